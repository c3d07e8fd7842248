#include "quant/capture_backend.h"

#include "backend/dtype.h"
#include "common/check.h"

namespace tandem::quant {
namespace {

// Wraps the inner backend's prepared layer and remembers its checkpoint name.
class NamedLinear : public PreparedLinear {
 public:
  NamedLinear(std::unique_ptr<PreparedLinear> inner, std::string name)
      : inner_(std::move(inner)), name_(std::move(name)) {}
  int64_t num_out() const override { return inner_->num_out(); }
  int64_t num_in() const override { return inner_->num_in(); }
  size_t nbytes() const override { return inner_->nbytes(); }
  const PreparedLinear& inner() const { return *inner_; }
  const std::string& name() const { return name_; }

 private:
  std::unique_ptr<PreparedLinear> inner_;
  std::string name_;
};

}  // namespace

CaptureBackend::CaptureBackend(std::unique_ptr<Backend> inner, int64_t max_rows_per_layer)
    : inner_(std::move(inner)), max_rows_(max_rows_per_layer) {}

StatusOr<std::unique_ptr<PreparedLinear>> CaptureBackend::prepare_linear(const LinearWeight& w) {
  ASSIGN_OR_RETURN(std::unique_ptr<PreparedLinear> inner, inner_->prepare_linear(w));
  return std::unique_ptr<PreparedLinear>(std::make_unique<NamedLinear>(std::move(inner), w.name));
}

void CaptureBackend::linear(const TensorView& x, const PreparedLinear& w, const TensorView& out) {
  const auto& named = dynamic_cast<const NamedLinear&>(w);
  CapturedInput& cap = captured_[named.name()];
  const int64_t k = x.dim(x.ndim - 1);
  const int64_t rows = x.numel() / k;
  cap.num_in = k;
  for (int64_t r = 0; r < rows && cap.rows < max_rows_; ++r, ++cap.rows) {
    for (int64_t j = 0; j < k; ++j) cap.data.push_back(load_as_f32(x.data, x.dtype, r * k + j));
  }
  inner_->linear(x, named.inner(), out);
}

}  // namespace tandem::quant

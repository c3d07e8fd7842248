// Linear layers on the CPU: dense weights kept in their checkpoint dtype,
// repacked into 8-column panels; int4
// weights repacked once at load into 32-value blocks (still 4 bits a weight)
// with rows grouped by quantization group (act-order rows sorted by g_idx).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"

namespace tandem::cpu {

class CpuLinear : public PreparedLinear {
 public:
  static StatusOr<std::unique_ptr<CpuLinear>> create(const LinearWeight& w, ThreadPool& pool);

  int64_t num_out() const override { return n_; }
  int64_t num_in() const override { return k_; }
  size_t nbytes() const override;

  // y[M, N] (f32) = x[M, K] (f32) · W^T + b. `scratch` is reused between calls.
  // Without use_blas every y[r, n] is computed by the same code whatever M is
  // (batch invariance: a sequence's logits do not depend on its batch-mates);
  // with it, M >= 16 goes through OpenBLAS sgemm on dequantized blocks (faster
  // prefill, rounding depends on M).
  void forward(const float* x, int64_t m, float* y, ThreadPool& pool, const Kernels& kern,
               std::vector<float>& scratch, bool use_blas) const;

  // Rows [n0, n0 + count) of W as fp32 [count, K] in original input order.
  void dequantize_rows(int64_t n0, int64_t count, float* out, const Kernels& kern) const;

 private:
  void gemv_rows(const float* x, int64_t m, float* y, int64_t n_begin, int64_t n_end, const Kernels& kern,
                 const float* xp, const float* xsum) const;

  bool quantized_ = false;
  int64_t n_ = 0, k_ = 0;
  // Dense: W in dtype_ as panels [num_panels_][K][kPanelWidth] (column n is
  // lane n % 8 of panel n / 8; the last panel zero-padded).
  DType dtype_ = DType::kF32;
  int64_t num_panels_ = 0;
  std::vector<uint8_t> dense_;
  // Int4: q_ [N, kp_/2] blocks; per (n, g) scale and zero (stored zero + offset).
  int64_t kp_ = 0;                      // padded K: each group rounded up to 32
  int64_t num_groups_ = 0;
  std::vector<uint8_t> q_;
  std::vector<float> scales_;           // [N, num_groups]
  std::vector<float> zeros_;            // [N, num_groups]
  std::vector<int64_t> group_offset_;   // [num_groups + 1] in padded K
  std::vector<int32_t> padded_to_k_;    // [kp_] original k, or -1 for padding
  std::vector<int32_t> k_group_;        // [K] group of each input row
  std::vector<float> bias_;             // [N] or empty
};

}  // namespace tandem::cpu

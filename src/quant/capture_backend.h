// A Backend decorator that records the inputs of named linear layers while a
// model runs on the CPU backend: the calibration activations of AWQ. Every op
// is forwarded to the wrapped backend unchanged.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace tandem::quant {

struct CapturedInput {
  int64_t num_in = 0;       // K
  int64_t rows = 0;         // tokens recorded (at most the cap)
  std::vector<float> data;  // [rows, K] fp32
};

class CaptureBackend : public Backend {
 public:
  // `inner` must keep activations in host memory (the CPU backend).
  CaptureBackend(std::unique_ptr<Backend> inner, int64_t max_rows_per_layer);

  // Inputs recorded so far, by layer name (e.g. "model.layers.0.self_attn.q_proj").
  const std::map<std::string, CapturedInput>& captured() const { return captured_; }

  std::string name() const override { return inner_->name(); }
  DType activation_dtype() const override { return inner_->activation_dtype(); }
  // Buffers belong to the inner backend (they are freed there directly).
  StatusOr<DeviceBuffer> allocate(size_t bytes) override { return inner_->allocate(bytes); }
  void free_memory(void* data, size_t bytes) override { inner_->free_memory(data, bytes); }
  void copy_host_to_device(void* dst, const void* src, size_t bytes) override {
    inner_->copy_host_to_device(dst, src, bytes);
  }
  void copy_device_to_host(void* dst, const void* src, size_t bytes) override {
    inner_->copy_device_to_host(dst, src, bytes);
  }
  void copy_device_to_device(void* dst, const void* src, size_t bytes) override {
    inner_->copy_device_to_device(dst, src, bytes);
  }
  void fill_zero(void* dst, size_t bytes) override { inner_->fill_zero(dst, bytes); }
  void synchronize() override { inner_->synchronize(); }
  void set_step_priority(bool high) override { inner_->set_step_priority(high); }
  StatusOr<std::unique_ptr<PreparedLinear>> prepare_linear(const LinearWeight& w) override;
  void embedding(const TensorView& table, const TensorView& ids, const TensorView& out) override {
    inner_->embedding(table, ids, out);
  }
  void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) override {
    inner_->rms_norm(x, weight, eps, out);
  }
  void add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight, float eps,
                    const TensorView& out) override {
    inner_->add_rms_norm(x, residual, weight, eps, out);
  }
  void linear(const TensorView& x, const PreparedLinear& w, const TensorView& out) override;
  void rope(const RopeParams& p) override { inner_->rope(p); }
  void write_kv(const TensorView& k, const TensorView& v, const TensorView& slot_mapping,
                const KvCacheView& cache) override {
    inner_->write_kv(k, v, slot_mapping, cache);
  }
  void attention(const AttentionParams& p) override { inner_->attention(p); }
  void silu_mul(const TensorView& gate, const TensorView& up, const TensorView& out) override {
    inner_->silu_mul(gate, up, out);
  }
  void gather_rows(const TensorView& x, const TensorView& rows, const TensorView& out) override {
    inner_->gather_rows(x, rows, out);
  }
  void swiglu(const TensorView& gate_up, const TensorView& out) override { inner_->swiglu(gate_up, out); }
  void split_columns(const TensorView& src, const std::vector<TensorView>& outs) override {
    inner_->split_columns(src, outs);
  }
  void convert(const TensorView& src, const TensorView& dst) override { inner_->convert(src, dst); }
  void copy_kv_pages(const KvCacheView& cache, const std::vector<std::pair<int32_t, int32_t>>& src_dst) override {
    inner_->copy_kv_pages(cache, src_dst);
  }

 private:
  std::unique_ptr<Backend> inner_;
  int64_t max_rows_;
  std::map<std::string, CapturedInput> captured_;
};

}  // namespace tandem::quant

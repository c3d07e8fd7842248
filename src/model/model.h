// The transformer forward pass (Llama / Mistral / Qwen2), written only against
// backend.h: pre-norm decoder layers with GQA attention over a paged KV cache,
// HF rotate-half RoPE, SwiGLU MLP, tied or untied head.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"
#include "engine/forward_batch.h"
#include "model/config.h"

namespace tandem {

class Model {
 public:
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Reads DIR (config, safetensors) and prepares every weight on `backend`,
  // which must outlive the model.
  static StatusOr<std::unique_ptr<Model>> load(const std::string& dir, Backend* backend);

  const ModelConfig& config() const { return config_; }
  Backend& backend() const { return *backend_; }
  // Backend bytes held by the weights.
  size_t weight_bytes() const;

  // One forward pass. `kv` has one view per layer (backend.h layout); the batch
  // was validated by the caller. Appends fp32 logits [logits_rows, vocab] to *logits;
  // logits == nullptr keeps them in backend memory for sample().
  Status forward(const ForwardBatch& batch, const std::vector<KvCacheView>& kv, std::vector<float>* logits);
  // Draws sample->rows on the backend from the logits the last forward(..., nullptr)
  // kept (SampleRow::logits_row indexes its logits_rows); *ids gets one id per row.
  Status sample(SampleBatch* sample, std::vector<int32_t>* ids);

 private:
  struct Layer;
  Model() = default;
  Status ensure_workspace(int num_tokens, int num_logits);

  ModelConfig config_;
  Backend* backend_ = nullptr;
  DeviceTensor embed_;       // [V, H] checkpoint dtype
  DeviceTensor final_norm_;  // [H] F32
  DeviceTensor inv_freq_;    // [head_dim / 2] F32 (linear scaling folded in)
  std::vector<std::unique_ptr<Layer>> layers_;
  std::unique_ptr<PreparedLinear> lm_head_;

  // Workspace, grown on demand (capacity in tokens / logits rows).
  int capacity_tokens_ = 0;
  int capacity_logits_ = 0;
  DeviceTensor residual_, hidden_, q_, k_, v_, attn_, gate_, up_;
  DeviceTensor gathered_, logits_act_, logits_f32_;
  TensorView kept_logits_;  // F32 [rows, vocab] of the last forward(..., nullptr)
  DeviceTensor sample_ids_;  // I32 ids of sample()
  DeviceBuffer meta_;  // int32 metadata of one batch
  size_t meta_capacity_ = 0;
};

}  // namespace tandem

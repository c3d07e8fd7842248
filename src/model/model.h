// The transformer forward pass (Llama / Mistral / Qwen2), written only against
// backend.h: pre-norm decoder layers with GQA attention over a paged KV cache,
// HF rotate-half RoPE, SwiGLU MLP, tied or untied head.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"
#include "engine/forward_batch.h"
#include "model/config.h"

namespace tandem {

struct ModelLoadOptions {
  // --load-format dummy: random weights of the config's exact shapes and format,
  // drawn in backend memory (no weight files; speed and memory runs). The path
  // may then be a folder with only config.json, or a config JSON file.
  bool dummy = false;
  uint64_t seed = 1;
};

class Model {
 public:
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Reads DIR (config, safetensors) and prepares every weight on `backend`,
  // which must outlive the model.
  static StatusOr<std::unique_ptr<Model>> load(const std::string& dir, Backend* backend,
                                               const ModelLoadOptions& options = {});

  const ModelConfig& config() const { return config_; }
  Backend& backend() const { return *backend_; }
  // Backend bytes held by the weights.
  size_t weight_bytes() const;

  // One forward pass. `kv` has one view per layer (backend.h layout); the batch
  // was validated by the caller. Appends fp32 logits [logits_rows, vocab] to *logits;
  // logits == nullptr keeps them in backend memory for sample().
  // Pure decode batches (one token per sequence, every row's logits) of up to
  // kMaxGraphBatch sequences run as a replayed backend graph where the backend
  // supports graphs: captured per batch size at its second occurrence.
  Status forward(const ForwardBatch& batch, const std::vector<KvCacheView>& kv, std::vector<float>* logits);
  // Draws sample->rows on the backend from the logits the last forward(..., nullptr)
  // kept (SampleRow::logits_row indexes its logits_rows); *ids gets one id per row.
  Status sample(SampleBatch* sample, std::vector<int32_t>* ids);
  // sample() in two halves: the draws are queued (and their copy to the host)
  // and the call returns; wait_sample() waits for that copy. A forward whose
  // batch has sampled_prefix = n takes its first n token ids from these draws
  // on the device (ForwardBatch::sampled_prefix).
  Status sample_async(SampleBatch* sample);
  Status wait_sample(std::vector<int32_t>* ids);
  // Allocates the workspace for steps of up to these sizes now (a budgeted
  // server takes its memory at load instead of growing it under load).
  Status reserve_workspace(int max_tokens, int max_logits) { return ensure_workspace(max_tokens, max_logits); }

  static constexpr int kMaxGraphBatch = 256;
  // Decode graphs captured so far (tests and logs).
  int num_graphs() const { return static_cast<int>(graphs_.size()); }

 private:
  struct Layer;
  struct StepMeta;  // one batch's metadata as backend views
  Model() = default;
  // What every layer's linears fuse for these step views (Backend::linear_fuses):
  // the norms and residual adds, and on top of them SwiGLU in the gate|up layer.
  struct DecodeFusion {
    bool norms = false;
    bool swiglu = false;
  };
  DecodeFusion decode_fusion(const TensorView& residual, const TensorView& attn, const TensorView& gate) const;
  Status ensure_workspace(int num_tokens, int num_logits);
  bool graph_eligible(const ForwardBatch& batch) const;
  Status upload_meta(const ForwardBatch& batch, StepMeta* m);
  Status upload_graph_meta(const ForwardBatch& batch, StepMeta* m);
  // Issues every op of the forward pass; returns the logits view (F32 [r, vocab]).
  TensorView issue(const StepMeta& m, const std::vector<KvCacheView>& kv);
  // Runs the step through a decode graph; false when it ran directly instead.
  bool run_graph(const StepMeta& m, const std::vector<KvCacheView>& kv);

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
  DeviceTensor qkv_, gate_up_;  // outputs of the fused q/k/v and gate/up layers
  DeviceTensor gathered_, logits_act_, logits_f32_;
  TensorView kept_logits_;  // F32 [rows, vocab] of the last forward(..., nullptr)
  DeviceTensor sample_ids_;  // I32 ids of sample()
  int num_drawn_ = 0;        // rows of the last sample_async() (0: none since the last forward)
  int num_waiting_ = -1;     // rows wait_sample() has yet to return (-1: none)
  DeviceBuffer meta_;  // int32 metadata of one batch
  size_t meta_capacity_ = 0;

  // Decode graphs by batch size. They hold the addresses of the workspace,
  // graph_meta_ and the KV views they were captured with: any of those moving
  // drops them all.
  std::map<int, std::unique_ptr<Backend::Graph>> graphs_;
  std::set<int> graph_warm_;      // batch sizes run once directly (the warm-up before a capture)
  bool graphs_enabled_ = false;   // backend supports graphs and no capture has failed
  DeviceBuffer graph_meta_;       // fixed-offset metadata of graph steps
  int64_t graph_meta_pages_ = 0;  // page_indices capacity of graph_meta_
  std::vector<const void*> graph_kv_;  // KV cache addresses the graphs use
};

}  // namespace tandem

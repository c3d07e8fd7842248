// LocalModelRunner: a Model on a backend plus its paged KV cache; the
// ModelRunner the engine drives (engine/forward_batch.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/forward_batch.h"
#include "model/model.h"

namespace tandem {

struct ModelRunnerOptions {
  int num_pages = 256;  // KV pages per layer
  int page_size = 16;   // tokens per page
};

class LocalModelRunner : public ModelRunner {
 public:
  // Takes the backend; loads DIR onto it and allocates num_pages pages per layer
  // (KV layout in backend.h).
  static StatusOr<std::unique_ptr<LocalModelRunner>> create(std::unique_ptr<Backend> backend, const std::string& dir,
                                                            const ModelRunnerOptions& options);
  ~LocalModelRunner() override;

  // kInvalidArgument (naming the field) when the batch is inconsistent: sizes,
  // token ids outside the vocabulary, slots or pages outside the cache, too few pages.
  Status forward(const ForwardBatch& batch, std::vector<float>* logits) override;
  Status copy_pages(const std::vector<std::pair<int32_t, int32_t>>& src_dst) override;
  int vocab_size() const override { return model_->config().vocab_size; }
  int num_pages() const override { return options_.num_pages; }
  int page_size() const override { return options_.page_size; }
  int64_t num_forward_calls() const override { return num_forward_calls_; }
  // Backends other than the CPU keep the logits and sample in place (on the CPU
  // the host sampler is the same computation without the extra pass).
  bool samples_on_backend() const override { return backend_->name() != "cpu"; }
  Status forward_keep(const ForwardBatch& batch) override;
  Status sample(SampleBatch* sample, std::vector<int32_t>* ids) override;

  const ModelConfig& config() const { return model_->config(); }
  Backend& backend() { return *backend_; }
  const Model& model() const { return *model_; }

 private:
  LocalModelRunner() = default;
  Status validate(const ForwardBatch& batch) const;

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;  // destroyed before backend_ (declared after)
  ModelRunnerOptions options_;
  std::vector<DeviceTensor> kv_k_, kv_v_;  // per layer [num_pages, page_size, KH, D]
  std::vector<KvCacheView> kv_;
  int64_t num_forward_calls_ = 0;
};

}  // namespace tandem

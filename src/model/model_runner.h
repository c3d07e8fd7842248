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

// The shared KV pool's memory (`serve --gpu-budget`, memory/kv_pool.h): one
// region of backend memory, num_chunks x chunk_bytes, shared by every model.
// Chunk c holds, layer-major, P = chunk_bytes / page_bytes pages of this model:
// [layer 0 K: P layer-pages][layer 0 V: P]...[layer L-1 V: P]. The engine's
// dense page p (chunk p / P) is row (p / P) x S + p % P, S = chunk_bytes /
// layer_page_bytes, of every layer's K and V view; the runner translates page
// tables and slots, so kernels see plain contiguous per-layer views.
struct ChunkedKvMemory {
  void* base = nullptr;     // backend memory (any backend of the same device)
  int64_t num_chunks = 0;
  int64_t chunk_bytes = 0;  // a multiple of this model's page and layer-page bytes
};

struct ModelRunnerOptions {
  int num_pages = 256;  // KV pages per layer (ignored with shared_kv)
  int page_size = 16;   // tokens per page
  ModelLoadOptions load;  // load.dummy: random weights (--load-format dummy)
  ChunkedKvMemory shared_kv;  // base null: the runner allocates its own num_pages pages
  int reserve_tokens = 0;  // > 0: allocate the workspace for steps of this many tokens at load
  int reserve_logits = 0;  // ... and this many logits rows
  // Let the engine queue a step before it has read the last one's tokens
  // (ModelRunner::overlaps_steps; backends that sample in place only).
  bool overlap_steps = true;
};

class LocalModelRunner : public ModelRunner {
 public:
  // Takes the backend; loads DIR onto it and allocates num_pages pages per layer
  // (KV layout in backend.h).
  // (shared: a budgeted server keeps the backend that holds the shared KV pool alive past this runner.)
  static StatusOr<std::unique_ptr<LocalModelRunner>> create(std::shared_ptr<Backend> backend, const std::string& dir,
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
  bool overlaps_steps() const override { return samples_on_backend() && options_.overlap_steps; }
  Status sample_async(SampleBatch* sample) override;
  Status wait_sample(std::vector<int32_t>* ids) override;
  void set_step_priority(bool high) override { backend_->set_step_priority(high); }

  const ModelConfig& config() const { return model_->config(); }
  Backend& backend() { return *backend_; }
  const Model& model() const { return *model_; }

 private:
  LocalModelRunner() = default;
  Status validate(const ForwardBatch& batch) const;
  Status map_shared_kv();
  // The batch with its pages and slots as rows of the per-layer views: itself
  // without shared_kv, else translated_ (every forward path goes through this).
  const ForwardBatch& in_view_rows(const ForwardBatch& batch);
  // Dense page id -> row of the per-layer views (identity without shared_kv).
  int32_t kernel_page(int32_t page) const {
    if (pages_per_chunk_ == 0 || page < 0) return page;
    return static_cast<int32_t>(page / pages_per_chunk_ * layer_pages_per_chunk_ + page % pages_per_chunk_);
  }

  std::shared_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;  // destroyed before backend_ (declared after)
  ModelRunnerOptions options_;
  std::vector<DeviceTensor> kv_k_, kv_v_;  // per layer [num_pages, page_size, KH, D]
  std::vector<KvCacheView> kv_;
  int64_t pages_per_chunk_ = 0;        // P, with shared_kv
  int64_t layer_pages_per_chunk_ = 0;  // S, with shared_kv
  ForwardBatch translated_;            // the batch in view rows (shared_kv only)
  int64_t num_forward_calls_ = 0;
};

}  // namespace tandem

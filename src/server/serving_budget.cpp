#include "server/serving_budget.h"

#include <algorithm>

#include "backend/registry.h"
#include "common/check.h"
#include "engine/scheduler.h"
#include "memory/weights.h"

namespace tandem::server {

StatusOr<std::unique_ptr<ServingBudget>> ServingBudget::create(const ServerConfig& config) {
  CHECK(!config.models.empty());
  const EngineOptions& first = config.models.front().engine;
  CHECK_GT(first.gpu_budget_bytes, 0u);
  std::unique_ptr<ServingBudget> b(new ServingBudget());
  // "auto" resolves as create_backend does: CUDA when a GPU is usable.
  b->device_ = first.device == "auto" ? (cuda_device_count() > 0 ? "cuda" : "cpu") : first.device;

  memory::PlanOptions o;
  o.budget_bytes = static_cast<int64_t>(first.gpu_budget_bytes);
  if (b->device_ == "cuda") {
    o.device = memory::PlanDevice::kCuda;
    o.overheads = memory::default_cuda_overheads();
    if (!config.overheads_path.empty()) {
      StatusOr<memory::Overheads> measured = memory::load_overheads_json(config.overheads_path);
      if (!measured.ok()) return Status(measured.status().code(), "--overheads: " + measured.status().message());
      o.overheads = *measured;
    }
    o.kv_dtype = DType::kF16;  // the CUDA backend's activations: F16 (or BF16, the same size)
  } else {
    o.device = memory::PlanDevice::kCpu;
    o.overheads = memory::cpu_overheads();
    o.kv_dtype = DType::kF32;  // the CPU backend keeps activations and KV in fp32
  }
  // One plan for all engines: the largest step limits any model is given.
  const SchedulerConfig defaults;
  o.max_num_seqs = 0;
  o.max_num_batched_tokens = 0;
  std::vector<memory::PlanModelInput> inputs;
  for (const ModelEntry& m : config.models) {
    o.max_num_seqs = std::max<int64_t>(o.max_num_seqs, m.engine.max_num_seqs > 0 ? m.engine.max_num_seqs
                                                                                 : defaults.max_num_seqs);
    o.max_num_batched_tokens = std::max<int64_t>(
        o.max_num_batched_tokens,
        m.engine.max_num_batched_tokens > 0 ? m.engine.max_num_batched_tokens : defaults.max_num_batched_tokens);
    memory::PlanModelInput in;
    in.name = m.name;
    in.path = m.path;
    in.weight = m.engine.weight;
    in.max_model_len = m.engine.max_model_len;
    StatusOr<ModelConfig> c = memory::load_model_config(m.path);
    if (!c.ok()) return Status(c.status().code(), "model '" + m.name + "': " + c.status().message());
    in.config = *c;
    inputs.push_back(std::move(in));
  }
  o.max_num_batched_tokens = std::max(o.max_num_batched_tokens, o.max_num_seqs);
  StatusOr<memory::Plan> plan = memory::make_plan(inputs, o);
  if (!plan.ok()) return Status(plan.status().code(), "gpu_budget: " + plan.status().message());
  b->plan_ = std::move(plan).value();
  if (!b->plan_.fits) return b;

  std::vector<memory::ChunkPoolModel> pool_models;
  std::vector<std::string> names;
  std::vector<double> weights;
  std::vector<int64_t> shared_step;
  for (size_t i = 0; i < b->plan_.models.size(); ++i) {
    pool_models.push_back({b->plan_.models[i].name, b->plan_.models[i].guaranteed_chunks});
    names.push_back(b->plan_.models[i].name);
    weights.push_back(inputs[i].weight);
    shared_step.push_back(config.models[i].engine.shared_step_tokens);
  }
  // A turn is about one capped step per unit of weight, so a waiting model
  // waits for short turns (memory/arbiter.h); without caps, one full step.
  const int64_t largest_cap = *std::max_element(shared_step.begin(), shared_step.end());
  const int64_t quantum = largest_cap > 0 && largest_cap < b->plan_.options.max_num_batched_tokens
                              ? largest_cap + memory::kDefaultStepOverheadTokens
                              : b->plan_.options.max_num_batched_tokens;
  b->pool_ = std::make_unique<memory::KvChunkPool>(b->plan_.num_chunks, b->plan_.chunk_bytes, std::move(pool_models));
  ASSIGN_OR_RETURN(const int concurrent, resolve_concurrent_steps(config.concurrent_steps, b->device_));
  b->arbiter_ = std::make_unique<memory::StepArbiter>(std::move(names), std::move(weights), quantum,
                                                      concurrent, memory::kDefaultStepOverheadTokens,
                                                      std::move(shared_step));
  return b;
}

ServingBudget::~ServingBudget() {
  std::lock_guard<std::mutex> lock(mu_);
  kv_buffer_.reset();  // frees through kv_backend_, which goes after it
  kv_backend_.reset();
}

int ServingBudget::index_of(const std::string& name) const {
  for (size_t i = 0; i < plan_.models.size(); ++i)
    if (plan_.models[i].name == name) return static_cast<int>(i);
  return -1;
}

bool ServingBudget::kv_memory_allocated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kv_backend_ != nullptr;
}

int64_t ServingBudget::arena_bytes(int index) const {
  const memory::ModelPlan& m = plan_.models[index];
  int64_t bytes = m.weight_alloc_bytes + m.activation_bytes + kCudaLtWorkspaceBytes;
  if (!kv_memory_allocated()) bytes += plan_.kv_pool_bytes;
  return bytes;
}

StatusOr<void*> ServingBudget::kv_memory(const std::shared_ptr<Backend>& backend) {
  std::lock_guard<std::mutex> lock(mu_);
  if (kv_backend_ == nullptr) {
    StatusOr<DeviceBuffer> buf = backend->allocate(static_cast<size_t>(plan_.kv_pool_bytes));
    if (!buf.ok())
      return Status(buf.status().code(), "the shared KV pool (" + std::to_string(plan_.num_chunks) + " chunks of " +
                                             std::to_string(plan_.chunk_bytes) + " bytes): " + buf.status().message());
    kv_buffer_ = std::move(buf).value();
    // Zeroed so a stray read of an unwritten row is finite.
    backend->fill_zero(kv_buffer_.data(), kv_buffer_.bytes());
    backend->synchronize();
    kv_backend_ = backend;
  }
  return kv_buffer_.data();
}

}  // namespace tandem::server

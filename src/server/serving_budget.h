// `tandem serve --gpu-budget`: every model's memory is planned before any of
// them loads (memory/planner.h, the same plan `tandem plan` prints), and the
// models then share what the plan sets up: one KV chunk pool, its one region of
// backend memory, and the step arbiter. docs/memory.md has the policy.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"
#include "memory/arbiter.h"
#include "memory/kv_pool.h"
#include "memory/planner.h"
#include "server/server_config.h"

namespace tandem::server {

// cuBLASLt workspace the CUDA backend takes from its arena (counted in the
// plan's per-model cuBLAS overhead).
inline constexpr int64_t kCudaLtWorkspaceBytes = int64_t{32} << 20;

class ServingBudget {
 public:
  // Plans config.models under their (common) gpu_budget. Errors: unreadable
  // configs, bad settings (kInvalidArgument, naming the model). A set that does
  // not fit is a plan with fits == false, not an error.
  static StatusOr<std::unique_ptr<ServingBudget>> create(const ServerConfig& config);
  ~ServingBudget();
  ServingBudget(const ServingBudget&) = delete;
  ServingBudget& operator=(const ServingBudget&) = delete;

  const memory::Plan& plan() const { return plan_; }
  bool on_cuda() const { return plan_.options.device == memory::PlanDevice::kCuda; }
  const std::string& device() const { return device_; }  // "cpu" or "cuda"
  // The model's index in the plan, or -1.
  int index_of(const std::string& name) const;
  // Steps per engine step that the plan was made for (the engines use them).
  int max_num_seqs() const { return static_cast<int>(plan_.options.max_num_seqs); }
  int max_num_batched_tokens() const { return static_cast<int>(plan_.options.max_num_batched_tokens); }

  // Bytes the backend of model `index` must be given: weights + workspace
  // (slack included) + the cuBLASLt workspace, plus the KV pool when this model's backend
  // is the one to hold it (the first model to load; see kv_memory).
  int64_t arena_bytes(int index) const;
  bool kv_memory_allocated() const;
  // The pool's region: allocated (and zeroed) from `backend` on the first call,
  // which is then kept alive as long as this object. Later calls return it.
  StatusOr<void*> kv_memory(const std::shared_ptr<Backend>& backend);

  memory::KvChunkPool& pool() { return *pool_; }
  memory::StepArbiter& arbiter() { return *arbiter_; }

 private:
  ServingBudget() = default;

  std::string device_;
  memory::Plan plan_;
  std::unique_ptr<memory::KvChunkPool> pool_;
  std::unique_ptr<memory::StepArbiter> arbiter_;
  mutable std::mutex mu_;
  std::shared_ptr<Backend> kv_backend_;  // GUARDED_BY(mu_); declared before the buffer it frees
  DeviceBuffer kv_buffer_;               // GUARDED_BY(mu_)
};

}  // namespace tandem::server

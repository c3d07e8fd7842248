// What the server holds per served model: its engine, tokenizer and chat
// renderer. build_model_service() is the one place that wires a real engine;
// tests pass their own factory (tests/server_testing/) instead.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "engine/api.h"
#include "memory/arbiter.h"
#include "tokenizer/tokenizer.h"

namespace tandem::server {

// Engine settings of one model (the same set `tandem plan` takes). 0 / empty
// means "the engine's default" (e.g. max_model_len from config.json).
struct EngineOptions {
  std::string device = "auto";        // auto | cpu | cuda
  uint64_t gpu_budget_bytes = 0;      // 0: the planner's default
  int max_model_len = 0;
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
  int max_queue = 0;                  // waiting requests before 429; 0: engine default
  std::string load_format = "auto";   // auto | dummy (random weights, config.json only)
  double weight = 1.0;                // with gpu_budget: share of the KV reserve and of GPU steps
  // With gpu_budget: tokens per step while another model waits for the GPU
  // (memory/arbiter.h); 0: no cap.
  int shared_step_tokens = static_cast<int>(memory::kDefaultSharedStepTokens);
};

// Renders chat messages (normalized: content is a string) into a prompt string.
// Kept behind this interface until ChatTemplate (branch `chat`) is on main.
class ChatRenderer {
 public:
  virtual ~ChatRenderer() = default;
  virtual StatusOr<std::string> render(const nlohmann::json& messages, bool add_generation_prompt) const = 0;
};

struct ModelService {
  std::string name;
  std::string path;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatRenderer> chat;   // null: the model has no chat template (chat -> 400)
  // Declared last so it is destroyed first: its thread may still call the tokenizer.
  std::unique_ptr<EngineClient> engine;
};

using ModelServiceFactory = std::function<StatusOr<std::unique_ptr<ModelService>>(
    const std::string& name, const std::string& path, const EngineOptions& options)>;

// The real engine for a model folder (safetensors + config.json + tokenizer.json),
// without a budget (gpu_budget 0).
StatusOr<std::unique_ptr<ModelService>> build_model_service(const std::string& name, const std::string& path,
                                                            const EngineOptions& options);

struct ServerConfig;
// `tandem serve`'s factory for a final configuration. With gpu_budget it plans
// every model first (logging the plan) and the models then share one KV pool
// and a step arbiter; a set that does not fit is kResourceExhausted whose
// message is the plan's table (as `tandem plan` prints it, reason and
// alternatives included). Bad configs: kInvalidArgument / kNotFound.
StatusOr<ModelServiceFactory> make_model_service_factory(const ServerConfig& config);

}  // namespace tandem::server

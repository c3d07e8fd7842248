// ServerConfig: everything `tandem serve` needs, from defaults, then the TOML
// file (--config), then CLI flags (which override both the file's [engine]
// table and its per-model tables). Validated once, in finalize_config().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/model_service.h"

namespace tandem::server {

// Engine settings that a layer (file [engine], file [models.X], CLI) may set.
struct EngineOverrides {
  std::optional<std::string> device;
  std::optional<uint64_t> gpu_budget_bytes;
  std::optional<int> max_model_len;
  std::optional<int> max_num_seqs;
  std::optional<int> max_num_batched_tokens;
  std::optional<int> max_queue;
  std::optional<std::string> load_format;
  std::optional<double> weight;
  std::optional<int> shared_step_tokens;
  void apply_to(EngineOptions* options) const;
};

struct ModelEntry {
  std::string name;
  std::string path;
  EngineOverrides overrides;  // from the file's [models.NAME] table
  EngineOptions engine;       // resolved by finalize_config()
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;                  // empty: no authentication
  std::string api_key_file;
  bool auth_health_metrics = false;     // /health and /metrics need the key too
  int io_threads = 2;                   // HTTP I/O threads (not one per connection)
  uint64_t max_body_bytes = 8u << 20;   // larger bodies get 413
  double request_timeout_s = 600;       // whole request, generation included
  double idle_timeout_s = 60;           // keep-alive idle / reading one request
  double drain_timeout_s = 30;          // SIGTERM: time running requests get to finish
  std::string log_format = "text";      // text | json
  EngineOverrides engine_file;          // the file's [engine] table
  EngineOverrides engine_cli;           // engine flags given on the command line
  std::vector<ModelEntry> models;
  // With gpu_budget on CUDA: measured overheads (`tandem plan --measure-overheads`)
  // instead of the built-in constants. Empty: the constants.
  std::string overheads_path;
  // With gpu_budget: engine steps that may run at once on their own streams (1 or
  // 2); 0: 2 on CUDA (the least served model's step on a high-priority stream:
  // its TTFT p99 stays within 2x of alone under another model's flood, docs/memory.md),
  // 1 on CPU (the models' thread pools would share the cores).
  int concurrent_steps = 0;
};

// ServerConfig::concurrent_steps as used on `device` ("cuda" or "cpu"): 0 gives
// 2 on CUDA and 1 on CPU; 1 and 2 stay; anything else is kInvalidArgument.
StatusOr<int> resolve_concurrent_steps(int configured, const std::string& device);

// "96GiB", "512MiB", "1.5GB", "1073741824" -> bytes.
StatusOr<uint64_t> parse_size(const std::string& text);

// Reads a TOML config into `config` (fields present in the file replace defaults).
Status load_config_file(const std::string& path, ServerConfig* config);
Status parse_config_toml(const std::string& text, const std::string& source_name, ServerConfig* config);

// Adds or replaces a model from "NAME=DIR".
Status add_model_flag(const std::string& spec, ServerConfig* config);

// Resolves the API key (flag, file, TANDEM_API_KEY env passed in) and each
// model's engine options; checks ranges. Errors name the field.
Status finalize_config(ServerConfig* config, const char* env_api_key);

}  // namespace tandem::server

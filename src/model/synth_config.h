// `tandem synth`: a random-weight checkpoint folder of a published config's
// exact tensor names, shapes and dtypes (memory::checkpoint_tensors, the
// planner's list), written as HF does: config.json + model.safetensors, or
// shards model-0000i-of-0000n.safetensors + model.safetensors.index.json.
// Values follow backend/random_weights.h (the same as --load-format dummy).
// Generated and written by all cores in large pwrite()s.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace tandem {

struct SynthConfigOptions {
  std::string config_path;        // a folder with config.json, or a config JSON file
  std::string out_dir;
  std::string quant = "config";   // config (keep the config's), awq, gptq, none
  int group_size = 0;             // 0: the config's group size, else 128
  bool desc_act = false;          // gptq: act-order (random g_idx)
  uint64_t seed = 1;
  uint64_t max_shard_bytes = 5000000000ull;  // HF's default "5GB"
  int threads = 0;                // 0: all cores
};

struct SynthConfigResult {
  int64_t num_tensors = 0;
  int64_t total_bytes = 0;  // tensor data (= the planner's weight_bytes)
  int num_shards = 0;
  double seconds = 0;
};

// Errors name the config file and field (bad config), or the output file.
StatusOr<SynthConfigResult> synth_from_config(const SynthConfigOptions& options);

}  // namespace tandem

// The tensors of a Llama/Mistral/Qwen2 checkpoint, found by HF names and checked
// against ModelConfig: host views into the mapped safetensors (nothing copied,
// int4 stays packed). The backend copies or repacks them at model load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace tandem {

struct LayerWeightsHost {
  TensorView input_norm;  // [H]
  TensorView post_norm;   // [H]
  LinearWeight q, k, v;   // [q_size, H], [kv_size, H], [kv_size, H] (+ bias for Qwen2)
  LinearWeight o;         // [H, q_size]
  LinearWeight gate, up;  // [I, H]
  LinearWeight down;      // [H, I]
};

struct ModelWeightsHost {
  std::unique_ptr<Checkpoint> checkpoint;  // owns the mappings the views point into
  TensorView embed;                        // [V, H]
  std::vector<LayerWeightsHost> layers;
  TensorView final_norm;                   // [H]
  LinearWeight lm_head;                    // [V, H]; the embedding when tied
};

// Opens DIR's safetensors and finds every tensor. Errors name the file and
// tensor: missing tensors, dtypes/shapes that disagree with config.json, bad
// int4 layouts (group size not dividing K, g_idx out of range).
StatusOr<ModelWeightsHost> load_weights_host(const ModelConfig& config, const std::string& dir);

// --load-format dummy: the same structure with views that carry only dtype and
// shape (data null), as the planner lists the checkpoint's tensors
// (memory::checkpoint_tensors); g_idx only with act-order. The backend draws the
// values (Backend::fill_random_uniform, prepare_random_linear). Errors name the
// config field when a layer cannot be packed as int4.
StatusOr<ModelWeightsHost> dummy_weights_host(const ModelConfig& config);

}  // namespace tandem

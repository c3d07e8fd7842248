// ModelConfig: what a checkpoint folder says about its model, read from
// config.json, generation_config.json (wins for eos ids and sampling defaults,
// as in transformers) and the quantization settings (quantization_config in
// config.json, else quant_config.json / quantize_config.json). Validated once here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backend/dtype.h"
#include "common/status.h"

namespace tandem {

enum class Architecture { kLlama, kMistral, kQwen2 };
const char* architecture_name(Architecture a);  // "LlamaForCausalLM", ...

enum class QuantMethod { kNone, kAwq, kGptq };
const char* quant_method_name(QuantMethod m);  // "none", "awq", "gptq"

enum class GptqFormat { kGptq, kGptqV2 };  // checkpoint_format "gptq" (v1) / "gptq_v2"

struct QuantConfig {
  QuantMethod method = QuantMethod::kNone;
  int bits = 16;                  // 4 for AWQ/GPTQ (the only width supported)
  int group_size = -1;            // -1: one group spanning all of K
  bool zero_point = true;         // AWQ: asymmetric with zeros (the only supported mode)
  std::string version = "gemm";   // AWQ kernel layout ("gemm"; "gemv" is rejected)
  bool desc_act = false;          // GPTQ act-order (g_idx not monotonic)
  bool sym = true;                // GPTQ symmetric
  GptqFormat checkpoint_format = GptqFormat::kGptq;
  std::string source;             // "config.json:quantization_config", "quantize_config.json", ...

  bool is_int4() const { return method != QuantMethod::kNone; }
  // GPTQ v1 stores zero - 1.
  int zero_offset() const {
    return method == QuantMethod::kGptq && checkpoint_format == GptqFormat::kGptq ? 1 : 0;
  }
  // Group size for a layer with K inputs (-1 means K).
  int64_t group_size_for(int64_t k) const { return group_size > 0 ? group_size : k; }
};

enum class RopeScalingType { kNone, kLinear };

// Sampling defaults from generation_config.json (unset when absent).
struct GenerationDefaults {
  std::optional<bool> do_sample;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> repetition_penalty;
  std::optional<int> max_new_tokens;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string model_type;          // "llama", "mistral", "qwen2"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;              // num_hidden_layers
  int num_heads = 0;               // num_attention_heads
  int num_kv_heads = 0;            // num_key_value_heads (default num_heads)
  int head_dim = 0;                // explicit head_dim, else hidden_size / num_heads
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScalingType rope_scaling = RopeScalingType::kNone;
  float rope_scaling_factor = 1.0f;
  // Per layer: 0 = full causal attention, else the sliding window length.
  // Mistral: sliding_window on every layer; Qwen2: only when use_sliding_window,
  // on layers >= max_window_layers (transformers' layer_types rule).
  std::vector<int> layer_sliding_window;
  bool qkv_bias = false;           // Qwen2 always; Llama "attention_bias"
  bool o_bias = false;             // Llama "attention_bias"
  bool tie_word_embeddings = false;
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // generation_config.json's list wins
  DType torch_dtype = DType::kF16;
  GenerationDefaults generation;
  QuantConfig quant;
  std::string model_dir;

  // The window every layer shares, or 0 when any layer attends fully (only then
  // may pages outside the window be freed).
  int uniform_sliding_window() const;
  // Largest window over layers (0 when none).
  int max_sliding_window() const;
  int q_size() const { return num_heads * head_dim; }
  int kv_size() const { return num_kv_heads * head_dim; }
  // Bytes of K and V for one token over all layers, at `kv_dtype`.
  int64_t kv_bytes_per_token(DType kv_dtype) const;

  // Reads DIR/config.json (+ generation_config.json, quant files). Errors name
  // the file and field, e.g. "config.json: field 'hidden_size' must be a positive integer".
  static StatusOr<ModelConfig> load(const std::string& dir);
  // The same from JSON text (empty strings for absent files); `dir` only for messages.
  static StatusOr<ModelConfig> parse(const std::string& config_json,
                                     const std::string& generation_config_json,
                                     const std::string& quant_json, const std::string& quant_file_name,
                                     const std::string& dir = "");
};

}  // namespace tandem

// Random-weight checkpoints of a given shape (dense, AWQ, GPTQ), written as a
// published folder would be: config.json + model.safetensors (or shards with
// an index). For tests and speed measurements; numbers, not language.
#pragma once

#include <cstdint>
#include <string>

#include "backend/dtype.h"
#include "common/status.h"

namespace tandem {

struct SynthOptions {
  std::string architecture = "LlamaForCausalLM";  // or MistralForCausalLM, Qwen2ForCausalLM
  int vocab_size = 256;
  int hidden_size = 64;
  int intermediate_size = 128;
  int num_layers = 2;
  int num_heads = 4;
  int num_kv_heads = 2;
  int head_dim = 0;                 // 0: hidden_size / num_heads (not written)
  DType dtype = DType::kF32;        // dense weights, scales, norms
  std::string quant = "none";       // "none", "awq", "gptq"
  int group_size = 32;              // -1 allowed for GPTQ
  bool desc_act = false;            // GPTQ act-order (random g_idx)
  bool sym = true;                  // GPTQ symmetric (zero 8)
  std::string gptq_format = "gptq"; // "gptq" (v1) or "gptq_v2"
  bool tie_word_embeddings = false;
  int sliding_window = 0;           // Mistral: active window; Qwen2: written with use_sliding_window false
  float rope_linear_factor = 0.0f;  // > 0 writes rope_scaling {"type": "linear"}
  float rope_theta = 10000.0f;
  int num_shards = 1;               // > 1 writes model-0000i-of-0000n.safetensors + index
  uint64_t seed = 1;
};

Status write_synthetic_checkpoint(const std::string& dir, const SynthOptions& options);

}  // namespace tandem

// Weight bytes of a checkpoint from its ModelConfig alone (config.json and the
// quantization settings; no weights read): the exact list of tensors such a
// checkpoint holds, names, shapes and dtypes as published (shared/FORMATS.md),
// and their sum. This is what the weights occupy once loaded as published.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/config.h"

namespace tandem::memory {

// One tensor of the published checkpoint, e.g.
// {"model.layers.0.self_attn.q_proj.qweight", {7168, 896}, DType::kI32}.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::kF16;
  int64_t bytes() const;
};

// PATH is a model folder (config.json + optional generation/quant files) or a
// JSON file holding a config.json's content (any name).
StatusOr<ModelConfig> load_model_config(const std::string& path);
// The folder of such a PATH (itself, or a config file's folder): where its
// tokenizer files are looked for.
std::string model_folder(const std::string& path);

// Every tensor, in the order of a typical HF export. Linear layers per
// FORMATS.md (K = in, N = out, G = group): dense weight [N, K] in torch_dtype;
// AWQ qweight I32 [K, N/8], qzeros I32 [K/G, N/8], scales F16 [K/G, N];
// GPTQ qweight I32 [K/8, N], qzeros I32 [ceil(K/G), N/8], scales F16
// [ceil(K/G), N], g_idx I32 [K]; biases [N] (F16 in quantized exports).
// Embeddings, norms and lm_head stay in torch_dtype; a tied lm_head is absent.
std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& config);
int64_t weight_bytes(const ModelConfig& config);
// Bytes the CUDA backend holds for these weights once loaded (what its arena
// must fit): the checkpoint's bytes, except that int4 zero points are unpacked
// to one 16-bit value per group and column (scale_zero [N, K/G]) and RMSNorm
// weights are kept in fp32. Keep in step with backend/cuda prepare_linear.
int64_t cuda_resident_weight_bytes(const ModelConfig& config);
// The largest linear layer's K x N (elements): dequantize-then-GEMM scratch.
// `fused`: q/k/v and gate/up count as the single layers the CUDA backend
// makes of them at load (model/linear_concat.h).
int64_t largest_linear_elements(const ModelConfig& config, bool fused = false);
// "awq int4 g128", "gptq int4 g128", "gptq int4 gall", or the float dtype ("bfloat16").
std::string describe_weights(const ModelConfig& config);
// The same model under another quantization, for "what would make it fit".
// Errors when a dimension cannot be packed or grouped.
StatusOr<ModelConfig> with_quant(const ModelConfig& config, const QuantConfig& quant);

}  // namespace tandem::memory

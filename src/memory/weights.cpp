#include "memory/weights.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tandem::memory {
namespace fs = std::filesystem;

int64_t TensorSpec::bytes() const {
  int64_t n = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<ModelConfig> load_model_config(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) return not_found("model path " + path + " does not exist");
  if (fs::is_directory(p, ec)) return ModelConfig::load(path);
  if (p.filename() == "config.json") return ModelConfig::load(p.parent_path().empty() ? "." : p.parent_path().string());
  // A lone config file under another name: parse its text; messages name this file.
  std::ifstream in(p, std::ios::binary);
  if (!in) return not_found("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  StatusOr<ModelConfig> c = ModelConfig::parse(ss.str(), "", "", "", dir);
  if (c.ok()) return c;
  std::string msg = c.status().message();
  const std::string wrong = dir + "/config.json";
  if (msg.compare(0, wrong.size(), wrong) == 0) msg = path + msg.substr(wrong.size());
  return Status(c.status().code(), msg);
}

std::string model_folder(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return path;
  return p.parent_path().empty() ? "." : p.parent_path().string();
}

namespace {

struct Linear {
  const char* name;  // "self_attn.q_proj"
  int64_t k, n;      // in_features, out_features
  bool bias;
};

std::vector<Linear> layer_linears(const ModelConfig& c) {
  const int64_t h = c.hidden_size, i = c.intermediate_size, q = c.q_size(), kv = c.kv_size();
  return {
      {"self_attn.q_proj", h, q, c.qkv_bias},  {"self_attn.k_proj", h, kv, c.qkv_bias},
      {"self_attn.v_proj", h, kv, c.qkv_bias}, {"self_attn.o_proj", q, h, c.o_bias},
      {"mlp.gate_proj", h, i, false},          {"mlp.up_proj", h, i, false},
      {"mlp.down_proj", i, h, false},
  };
}

// Int4 tensors of one linear layer [K in, N out].
void add_int4_linear(const std::string& prefix, int64_t k, int64_t n, const QuantConfig& q,
                     std::vector<TensorSpec>* out) {
  const int64_t g = q.group_size_for(k);
  const int64_t groups = (k + g - 1) / g;
  if (q.method == QuantMethod::kAwq) {
    out->push_back({prefix + ".qweight", {k, n / 8}, DType::kI32});  // packed along N
    out->push_back({prefix + ".qzeros", {groups, n / 8}, DType::kI32});
    out->push_back({prefix + ".scales", {groups, n}, DType::kF16});
  } else {
    out->push_back({prefix + ".qweight", {k / 8, n}, DType::kI32});  // packed along K
    out->push_back({prefix + ".qzeros", {groups, n / 8}, DType::kI32});
    out->push_back({prefix + ".scales", {groups, n}, DType::kF16});
    out->push_back({prefix + ".g_idx", {k}, DType::kI32});
  }
}

}  // namespace

std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& c) {
  std::vector<TensorSpec> t;
  const DType fdt = c.torch_dtype;
  const bool int4 = c.quant.is_int4();
  t.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, fdt});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string layer = "model.layers." + std::to_string(i) + ".";
    for (const Linear& l : layer_linears(c)) {
      const std::string prefix = layer + l.name;
      if (int4) add_int4_linear(prefix, l.k, l.n, c.quant, &t);
      else t.push_back({prefix + ".weight", {l.n, l.k}, fdt});
      if (l.bias) t.push_back({prefix + ".bias", {l.n}, int4 ? DType::kF16 : fdt});
    }
    t.push_back({layer + "input_layernorm.weight", {c.hidden_size}, fdt});
    t.push_back({layer + "post_attention_layernorm.weight", {c.hidden_size}, fdt});
  }
  t.push_back({"model.norm.weight", {c.hidden_size}, fdt});
  if (!c.tie_word_embeddings) t.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}, fdt});
  return t;
}

int64_t weight_bytes(const ModelConfig& config) {
  int64_t total = 0;
  for (const TensorSpec& t : checkpoint_tensors(config)) total += t.bytes();
  return total;
}

int64_t cuda_resident_weight_bytes(const ModelConfig& c) {
  int64_t total = weight_bytes(c);
  if (c.quant.is_int4()) {
    for (const Linear& l : layer_linears(c)) {
      const int64_t g = c.quant.group_size_for(l.k);
      const int64_t groups = (l.k + g - 1) / g;
      // zeros: I32 [groups, N/8] packed (N/2 bytes a group) -> 16-bit [N, groups] (2N bytes).
      total += c.num_layers * (groups * l.n * 2 - groups * l.n / 2);
    }
  }
  const int64_t norm_dtype = static_cast<int64_t>(dtype_size(c.torch_dtype));
  total += (2 * c.num_layers + 1) * c.hidden_size * (4 - norm_dtype);  // norms uploaded as fp32
  return total;
}

int64_t largest_linear_elements(const ModelConfig& c, bool fused) {
  int64_t best = 0;
  for (const Linear& l : layer_linears(c)) best = std::max(best, l.k * l.n);
  if (fused) {
    const int64_t h = c.hidden_size;
    best = std::max({best, h * (c.q_size() + 2 * c.kv_size()), h * 2 * int64_t{c.intermediate_size}});
  }
  return best;
}

std::string describe_weights(const ModelConfig& c) {
  if (!c.quant.is_int4()) {
    switch (c.torch_dtype) {
      case DType::kBF16: return "bfloat16";
      case DType::kF32: return "float32";
      default: return "float16";
    }
  }
  std::ostringstream os;
  os << quant_method_name(c.quant.method) << " int" << c.quant.bits << " g";
  if (c.quant.group_size > 0) os << c.quant.group_size; else os << "all";
  return os.str();
}

StatusOr<ModelConfig> with_quant(const ModelConfig& config, const QuantConfig& quant) {
  ModelConfig c = config;
  c.quant = quant;
  if (quant.is_int4()) {
    c.torch_dtype = DType::kF16;  // int4 exports keep embeddings, norms and scales in fp16
    for (const Linear& l : layer_linears(c)) {
      if (l.k % 8 != 0 || l.n % 8 != 0 || (quant.group_size > 0 && l.k % quant.group_size != 0))
        return invalid_argument(std::string(l.name) + " [in " + std::to_string(l.k) + ", out " +
                                std::to_string(l.n) + "] cannot be packed as " + describe_weights(c));
    }
  }
  return c;
}

}  // namespace tandem::memory

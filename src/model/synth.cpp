#include "model/synth.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/quant.h"
#include "model/safetensors.h"

namespace tandem {
namespace {

using json = nlohmann::json;

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  float uniform(float a, float b) { return std::uniform_real_distribution<float>(a, b)(rng_); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
};

std::vector<uint8_t> float_bytes(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) store_from_f32(out.data(), dtype, static_cast<int64_t>(i), v[i]);
  return out;
}

template <typename T>
std::vector<uint8_t> raw_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace

Status write_synthetic_checkpoint(const std::string& dir, const SynthOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return not_found(dir + ": cannot create (" + ec.message() + ")");
  Gen gen(o.seed);
  const int h = o.hidden_size, inter = o.intermediate_size;
  const int hd = o.head_dim > 0 ? o.head_dim : h / o.num_heads;
  const int qs = o.num_heads * hd, kvs = o.num_kv_heads * hd;
  const bool qwen = o.architecture == "Qwen2ForCausalLM";
  std::vector<SafetensorsTensorData> tensors;
  auto add_float = [&](const std::string& name, std::vector<int64_t> shape, float lo, float hi) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = gen.uniform(lo, hi);
    tensors.push_back({name, o.dtype, shape, float_bytes(v, o.dtype)});
  };
  auto add_linear = [&](const std::string& prefix, int n, int k, bool bias) {
    if (bias) add_float(prefix + ".bias", {n}, -0.1f, 0.1f);
    const float a = std::sqrt(3.0f / static_cast<float>(k));  // std 1/sqrt(k)
    if (o.quant == "none") {
      add_float(prefix + ".weight", {n, k}, -a, a);
      return;
    }
    const int g = o.group_size > 0 ? o.group_size : k;
    const int groups = (k + g - 1) / g;
    std::vector<uint8_t> q(static_cast<size_t>(k) * n), z(static_cast<size_t>(groups) * n);
    for (auto& x : q) x = static_cast<uint8_t>(gen.integer(0, 15));
    const bool sym = o.quant == "gptq" && o.sym;
    for (auto& x : z) x = sym ? 8 : static_cast<uint8_t>(gen.integer(5, 10));
    std::vector<float> s(static_cast<size_t>(groups) * n);
    for (auto& x : s) x = a / 4.6f * gen.uniform(0.8f, 1.2f);
    const DType sd = o.dtype == DType::kF32 ? DType::kF16 : o.dtype;
    if (o.quant == "awq") {
      tensors.push_back({prefix + ".qweight", DType::kI32, {k, n / 8}, raw_bytes(pack_awq(q, k, n))});
      tensors.push_back({prefix + ".qzeros", DType::kI32, {groups, n / 8}, raw_bytes(pack_awq(z, groups, n))});
      tensors.push_back({prefix + ".scales", sd, {groups, n}, float_bytes(s, sd)});
      return;
    }
    // GPTQ: v1 stores zero - 1.
    std::vector<uint8_t> zs = z;
    if (o.gptq_format == "gptq")
      for (auto& x : zs) x = static_cast<uint8_t>((x - 1) & 0xf);
    std::vector<int32_t> g_idx(k);
    if (o.desc_act) {
      std::vector<int32_t> perm(k);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), gen.rng());
      for (int i = 0; i < k; ++i) g_idx[perm[i]] = i / g;
    } else {
      for (int i = 0; i < k; ++i) g_idx[i] = i / g;
    }
    tensors.push_back({prefix + ".qweight", DType::kI32, {k / 8, n}, raw_bytes(pack_gptq_qweight(q, k, n))});
    tensors.push_back({prefix + ".qzeros", DType::kI32, {groups, n / 8}, raw_bytes(pack_gptq_qzeros(zs, groups, n))});
    tensors.push_back({prefix + ".scales", sd, {groups, n}, float_bytes(s, sd)});
    tensors.push_back({prefix + ".g_idx", DType::kI32, {k}, raw_bytes(g_idx)});
  };

  add_float("model.embed_tokens.weight", {o.vocab_size, h}, -1.0f, 1.0f);
  for (int i = 0; i < o.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add_float(p + "input_layernorm.weight", {h}, 0.8f, 1.2f);
    add_float(p + "post_attention_layernorm.weight", {h}, 0.8f, 1.2f);
    add_linear(p + "self_attn.q_proj", qs, h, qwen);
    add_linear(p + "self_attn.k_proj", kvs, h, qwen);
    add_linear(p + "self_attn.v_proj", kvs, h, qwen);
    add_linear(p + "self_attn.o_proj", h, qs, false);
    add_linear(p + "mlp.gate_proj", inter, h, false);
    add_linear(p + "mlp.up_proj", inter, h, false);
    add_linear(p + "mlp.down_proj", h, inter, false);
  }
  add_float("model.norm.weight", {h}, 0.8f, 1.2f);
  if (!o.tie_word_embeddings) add_float("lm_head.weight", {o.vocab_size, h}, -0.5f, 0.5f);

  json cfg = {{"architectures", {o.architecture}},
              {"model_type", qwen ? "qwen2" : o.architecture == "MistralForCausalLM" ? "mistral" : "llama"},
              {"vocab_size", o.vocab_size},
              {"hidden_size", h},
              {"intermediate_size", inter},
              {"num_hidden_layers", o.num_layers},
              {"num_attention_heads", o.num_heads},
              {"num_key_value_heads", o.num_kv_heads},
              {"max_position_embeddings", 4096},
              {"rms_norm_eps", 1e-5},
              {"rope_theta", o.rope_theta},
              {"hidden_act", "silu"},
              {"tie_word_embeddings", o.tie_word_embeddings},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"torch_dtype", o.dtype == DType::kF32 ? "float32" : o.dtype == DType::kF16 ? "float16" : "bfloat16"}};
  if (o.head_dim > 0) cfg["head_dim"] = o.head_dim;
  if (o.rope_linear_factor > 0) cfg["rope_scaling"] = {{"type", "linear"}, {"factor", o.rope_linear_factor}};
  if (o.sliding_window > 0) {
    cfg["sliding_window"] = o.sliding_window;
    if (qwen) {
      cfg["use_sliding_window"] = false;
      cfg["max_window_layers"] = o.num_layers;
    }
  }
  if (o.quant == "awq") {
    cfg["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", o.group_size},
                                  {"zero_point", true}, {"version", "gemm"}};
  } else if (o.quant == "gptq") {
    cfg["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4},        {"group_size", o.group_size},
                                  {"desc_act", o.desc_act}, {"sym", o.sym},    {"checkpoint_format", o.gptq_format}};
  }
  {
    std::ofstream out(fs::path(dir) / "config.json");
    out << cfg.dump(2) << "\n";
    if (!out) return internal_error(dir + "/config.json: write failed");
  }
  if (o.num_shards <= 1) return write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors);
  json weight_map = json::object();
  const size_t per = (tensors.size() + o.num_shards - 1) / o.num_shards;
  for (int s = 0; s < o.num_shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, o.num_shards);
    std::vector<SafetensorsTensorData> part;
    for (size_t i = s * per; i < std::min(tensors.size(), (s + 1) * per); ++i) {
      part.push_back(tensors[i]);
      weight_map[tensors[i].name] = name;
    }
    RETURN_IF_ERROR(write_safetensors((fs::path(dir) / name).string(), part));
  }
  std::ofstream idx(fs::path(dir) / "model.safetensors.index.json");
  idx << json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(2) << "\n";
  return ok_status();
}

}  // namespace tandem

#include "model/weights.h"

#include <map>

#include "common/log.h"
#include "memory/weights.h"
#include "model/quant.h"

namespace tandem {
namespace {

class Finder {
 public:
  Finder(const Checkpoint& ck, const ModelConfig& cfg) : ck_(ck), cfg_(cfg) {}

  Status error(const std::string& name, const std::string& what) const {
    return invalid_argument(ck_.file_of(name) + ": tensor '" + name + "': " + what);
  }

  StatusOr<TensorView> float_tensor(const std::string& name, std::initializer_list<int64_t> shape) const {
    ASSIGN_OR_RETURN(TensorView t, ck_.get(name));
    if (!is_float_dtype(t.dtype))
      return error(name, std::string("dtype ") + dtype_name(t.dtype) + " disagrees with config.json (expected " +
                             dtype_name(cfg_.torch_dtype) + ")");
    RETURN_IF_ERROR(check_shape(name, t, shape));
    return t;
  }

  Status check_shape(const std::string& name, const TensorView& t, std::initializer_list<int64_t> shape) const {
    TensorView want(nullptr, t.dtype, shape);
    bool same = t.ndim == want.ndim;
    for (int i = 0; same && i < t.ndim; ++i) same = t.shape[i] == want.shape[i];
    if (!same)
      return error(name, "shape " + t.shape_string() + " disagrees with config.json (expected " +
                             want.shape_string() + ")");
    return ok_status();
  }

  // prefix "model.layers.0.self_attn.q_proj"; N outputs, K inputs.
  StatusOr<LinearWeight> linear(const std::string& prefix, int64_t n, int64_t k, bool bias, bool quantized) const {
    LinearWeight w;
    w.name = prefix;
    w.num_out = n;
    w.num_in = k;
    if (bias) {
      ASSIGN_OR_RETURN(w.bias, float_tensor(prefix + ".bias", {n}));
    }
    if (!quantized) {
      w.format = WeightFormat::kDense;
      ASSIGN_OR_RETURN(w.weight, float_tensor(prefix + ".weight", {n, k}));
      return w;
    }
    const QuantConfig& q = cfg_.quant;
    w.format = q.method == QuantMethod::kAwq ? WeightFormat::kAwqGemm : WeightFormat::kGptq;
    w.group_size = static_cast<int>(q.group_size_for(k));
    w.zero_offset = q.zero_offset();
    if (w.format == WeightFormat::kAwqGemm && k % w.group_size != 0)
      return error(prefix + ".qweight", q.source + " group_size " + std::to_string(w.group_size) +
                                            " does not divide K = " + std::to_string(k));
    for (const char* part : {"qweight", "qzeros", "scales"}) {
      const std::string name = prefix + "." + part;
      ASSIGN_OR_RETURN(TensorView t, ck_.get(name));
      const bool want_int = std::string(part) != "scales";
      if (want_int && t.dtype != DType::kI32)
        return error(name, std::string("dtype ") + dtype_name(t.dtype) + " disagrees with " + q.source +
                               " (packed int4 needs I32)");
      if (!want_int && !is_float_dtype(t.dtype))
        return error(name, std::string("dtype ") + dtype_name(t.dtype) + " is not a float type");
      (part[1] == 'w' ? w.qweight : part[1] == 'z' ? w.qzeros : w.scales) = t;
    }
    if (w.format == WeightFormat::kGptq && ck_.has(prefix + ".g_idx")) {
      ASSIGN_OR_RETURN(w.g_idx, ck_.get(prefix + ".g_idx"));
      if (!q.desc_act) {
        // Without act-order g_idx must be k / G; then it carries no information.
        bool trivial = w.g_idx.dtype == DType::kI32 && w.g_idx.ndim == 1 && w.g_idx.shape[0] == k;
        for (int64_t i = 0; trivial && i < k; ++i) trivial = read_i32(w.g_idx, i) == i / w.group_size;
        if (trivial) w.g_idx = TensorView();
      }
    } else if (w.format == WeightFormat::kGptq && q.desc_act) {
      return error(prefix + ".g_idx", "missing but " + q.source + " sets desc_act");
    }
    Status s = validate_linear(w);
    if (!s.ok()) return invalid_argument(ck_.file_of(prefix + ".qweight") + ": " + s.message());
    return w;
  }

 private:
  const Checkpoint& ck_;
  const ModelConfig& cfg_;
};

}  // namespace

StatusOr<ModelWeightsHost> load_weights_host(const ModelConfig& cfg, const std::string& dir) {
  ModelWeightsHost w;
  ASSIGN_OR_RETURN(w.checkpoint, Checkpoint::open(dir));
  Finder f(*w.checkpoint, cfg);
  const int64_t h = cfg.hidden_size, v = cfg.vocab_size, inter = cfg.intermediate_size;
  const int64_t qs = cfg.q_size(), kvs = cfg.kv_size();
  const bool quant = cfg.quant.is_int4();
  ASSIGN_OR_RETURN(w.embed, f.float_tensor("model.embed_tokens.weight", {v, h}));
  if (w.embed.dtype != cfg.torch_dtype) {
    TANDEM_LOG(kWarning) << dir << ": embeddings are " << dtype_name(w.embed.dtype) << " but config.json says "
                         << dtype_name(cfg.torch_dtype);
  }
  ASSIGN_OR_RETURN(w.final_norm, f.float_tensor("model.norm.weight", {h}));
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeightsHost l;
    ASSIGN_OR_RETURN(l.input_norm, f.float_tensor(p + "input_layernorm.weight", {h}));
    ASSIGN_OR_RETURN(l.post_norm, f.float_tensor(p + "post_attention_layernorm.weight", {h}));
    ASSIGN_OR_RETURN(l.q, f.linear(p + "self_attn.q_proj", qs, h, cfg.qkv_bias, quant));
    ASSIGN_OR_RETURN(l.k, f.linear(p + "self_attn.k_proj", kvs, h, cfg.qkv_bias, quant));
    ASSIGN_OR_RETURN(l.v, f.linear(p + "self_attn.v_proj", kvs, h, cfg.qkv_bias, quant));
    ASSIGN_OR_RETURN(l.o, f.linear(p + "self_attn.o_proj", h, qs, cfg.o_bias, quant));
    ASSIGN_OR_RETURN(l.gate, f.linear(p + "mlp.gate_proj", inter, h, false, quant));
    ASSIGN_OR_RETURN(l.up, f.linear(p + "mlp.up_proj", inter, h, false, quant));
    ASSIGN_OR_RETURN(l.down, f.linear(p + "mlp.down_proj", h, inter, false, quant));
    w.layers.push_back(std::move(l));
  }
  if (cfg.tie_word_embeddings || !w.checkpoint->has("lm_head.weight")) {
    if (!cfg.tie_word_embeddings)
      return not_found(dir + ": tensor 'lm_head.weight' not found and config.json has tie_word_embeddings false");
    w.lm_head.format = WeightFormat::kDense;
    w.lm_head.weight = w.embed;
  } else {
    ASSIGN_OR_RETURN(w.lm_head.weight, f.float_tensor("lm_head.weight", {v, h}));
  }
  w.lm_head.name = "lm_head";
  w.lm_head.num_out = v;
  w.lm_head.num_in = h;
  return w;
}

StatusOr<ModelWeightsHost> dummy_weights_host(const ModelConfig& cfg) {
  std::map<std::string, memory::TensorSpec> specs;
  for (memory::TensorSpec& t : memory::checkpoint_tensors(cfg)) specs[t.name] = std::move(t);
  auto view = [&](const std::string& name) -> TensorView {
    const memory::TensorSpec& t = specs.at(name);
    TensorView v;
    v.dtype = t.dtype;
    for (int64_t d : t.shape) v.shape[v.ndim++] = d;
    return v;
  };
  const QuantConfig& q = cfg.quant;
  const std::string where = cfg.model_dir + "/config.json: ";
  auto linear = [&](const std::string& prefix, int64_t n, int64_t k) -> StatusOr<LinearWeight> {
    LinearWeight w;
    w.name = prefix;
    w.num_out = n;
    w.num_in = k;
    if (specs.count(prefix + ".bias")) w.bias = view(prefix + ".bias");
    if (!q.is_int4()) {
      w.format = WeightFormat::kDense;
      w.weight = view(prefix + ".weight");
      return w;
    }
    w.format = q.method == QuantMethod::kAwq ? WeightFormat::kAwqGemm : WeightFormat::kGptq;
    w.group_size = static_cast<int>(q.group_size_for(k));
    w.zero_offset = q.zero_offset();
    if (n % 8 != 0 || k % 8 != 0 || k % w.group_size != 0)
      return invalid_argument(where + prefix + " [in " + std::to_string(k) + ", out " + std::to_string(n) +
                              "] cannot be packed as int4 with " + q.source + " group_size " +
                              std::to_string(q.group_size) + " (needs in and out % 8 == 0, in % group_size == 0)");
    w.qweight = view(prefix + ".qweight");
    w.qzeros = view(prefix + ".qzeros");
    w.scales = view(prefix + ".scales");
    if (w.format == WeightFormat::kGptq && q.desc_act) w.g_idx = view(prefix + ".g_idx");
    return w;
  };
  ModelWeightsHost w;
  const int64_t h = cfg.hidden_size, inter = cfg.intermediate_size, qs = cfg.q_size(), kvs = cfg.kv_size();
  w.embed = view("model.embed_tokens.weight");
  w.final_norm = view("model.norm.weight");
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeightsHost l;
    l.input_norm = view(p + "input_layernorm.weight");
    l.post_norm = view(p + "post_attention_layernorm.weight");
    ASSIGN_OR_RETURN(l.q, linear(p + "self_attn.q_proj", qs, h));
    ASSIGN_OR_RETURN(l.k, linear(p + "self_attn.k_proj", kvs, h));
    ASSIGN_OR_RETURN(l.v, linear(p + "self_attn.v_proj", kvs, h));
    ASSIGN_OR_RETURN(l.o, linear(p + "self_attn.o_proj", h, qs));
    ASSIGN_OR_RETURN(l.gate, linear(p + "mlp.gate_proj", inter, h));
    ASSIGN_OR_RETURN(l.up, linear(p + "mlp.up_proj", inter, h));
    ASSIGN_OR_RETURN(l.down, linear(p + "mlp.down_proj", h, inter));
    w.layers.push_back(std::move(l));
  }
  w.lm_head.format = WeightFormat::kDense;
  w.lm_head.weight = cfg.tie_word_embeddings ? w.embed : view("lm_head.weight");
  w.lm_head.name = "lm_head";
  w.lm_head.num_out = cfg.vocab_size;
  w.lm_head.num_in = h;
  return w;
}

}  // namespace tandem

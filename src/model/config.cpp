#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace tandem {
namespace {

using json = nlohmann::json;

// Reads a whole file; nullopt when it does not exist.
StatusOr<std::optional<std::string>> read_optional_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::string>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path.string() + ": cannot open");
  std::ostringstream os;
  os << in.rdbuf();
  return std::optional<std::string>(os.str());
}

// Field access with errors naming file and field.
class Fields {
 public:
  Fields(const json& j, std::string file) : j_(j), file_(std::move(file)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& at(const char* key) const { return j_.at(key); }
  const std::string& file() const { return file_; }

  Status error(const char* key, const std::string& what) const {
    return invalid_argument(file_ + ": field '" + key + "' " + what);
  }

  StatusOr<int> positive_int(const char* key) const {
    if (!has(key)) return error(key, "is missing");
    const json& v = j_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1ll << 31) - 1)
      return error(key, "must be a positive integer, got " + v.dump());
    return static_cast<int>(v.get<int64_t>());
  }
  StatusOr<int> positive_int_or(const char* key, int def) const {
    if (!has(key)) return def;
    return positive_int(key);
  }
  StatusOr<int> int_or(const char* key, int def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_number_integer()) return error(key, "must be an integer, got " + v.dump());
    return static_cast<int>(v.get<int64_t>());
  }
  StatusOr<double> number_or(const char* key, double def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_number()) return error(key, "must be a number, got " + v.dump());
    return v.get<double>();
  }
  StatusOr<bool> bool_or(const char* key, bool def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_boolean()) return error(key, "must be true or false, got " + v.dump());
    return v.get<bool>();
  }
  StatusOr<std::string> string_or(const char* key, const std::string& def) const {
    if (!has(key)) return def;
    const json& v = j_.at(key);
    if (!v.is_string()) return error(key, "must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  // An int or a list of ints (bos/eos ids).
  StatusOr<std::vector<int32_t>> id_list(const char* key) const {
    std::vector<int32_t> out;
    if (!has(key)) return out;
    const json& v = j_.at(key);
    auto one = [&](const json& e) -> Status {
      if (!e.is_number_integer() || e.get<int64_t>() < 0)
        return error(key, "must be a non-negative token id or a list of them, got " + v.dump());
      out.push_back(static_cast<int32_t>(e.get<int64_t>()));
      return ok_status();
    };
    if (v.is_array()) {
      for (const auto& e : v) RETURN_IF_ERROR(one(e));
    } else {
      RETURN_IF_ERROR(one(v));
    }
    return out;
  }

 private:
  const json& j_;
  std::string file_;
};

StatusOr<json> parse_json(const std::string& text, const std::string& file) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(file + ": not valid JSON");
  if (!j.is_object()) return invalid_argument(file + ": expected a JSON object");
  return j;
}

// AWQ (quant_method "awq"; old quant_config.json uses w_bit / q_group_size) or
// GPTQ ("gptq"; quantize_config.json has no quant_method but GPTQ keys).
StatusOr<QuantConfig> parse_quant(const json& q, const std::string& source) {
  Fields f(q, source);
  QuantConfig out;
  out.source = source;
  ASSIGN_OR_RETURN(std::string method, f.string_or("quant_method", ""));
  std::transform(method.begin(), method.end(), method.begin(), ::tolower);
  if (method.empty()) {
    if (f.has("w_bit") || f.has("q_group_size") || f.has("zero_point")) {
      method = "awq";
    } else if (f.has("desc_act") || f.has("sym") || f.has("damp_percent")) {
      method = "gptq";
    } else {
      return f.error("quant_method", "is missing and the keys match neither AWQ nor GPTQ");
    }
  }
  if (method == "awq") {
    out.method = QuantMethod::kAwq;
    const char* bits_key = f.has("w_bit") ? "w_bit" : "bits";
    ASSIGN_OR_RETURN(out.bits, f.positive_int_or(bits_key, 4));
    const char* group_key = f.has("q_group_size") ? "q_group_size" : "group_size";
    ASSIGN_OR_RETURN(out.group_size, f.int_or(group_key, 128));
    ASSIGN_OR_RETURN(out.zero_point, f.bool_or("zero_point", true));
    ASSIGN_OR_RETURN(out.version, f.string_or("version", "gemm"));
    std::transform(out.version.begin(), out.version.end(), out.version.begin(), ::tolower);
    if (out.version != "gemm")
      return f.error("version", "is '" + out.version + "'; only AWQ \"gemm\" is supported");
    if (!out.zero_point) return f.error("zero_point", "is false; only AWQ with zero points is supported");
    if (out.bits != 4) return f.error(bits_key, "is " + std::to_string(out.bits) + "; only 4-bit is supported");
    if (out.group_size <= 0 && out.group_size != -1)
      return f.error(group_key, "must be a positive integer or -1, got " + std::to_string(out.group_size));
  } else if (method == "gptq") {
    out.method = QuantMethod::kGptq;
    ASSIGN_OR_RETURN(out.bits, f.positive_int_or("bits", 4));
    ASSIGN_OR_RETURN(out.group_size, f.int_or("group_size", 128));
    ASSIGN_OR_RETURN(out.desc_act, f.bool_or("desc_act", false));
    ASSIGN_OR_RETURN(out.sym, f.bool_or("sym", true));
    const char* fmt_key = f.has("checkpoint_format") ? "checkpoint_format" : "format";
    ASSIGN_OR_RETURN(std::string fmt, f.string_or(fmt_key, "gptq"));
    std::transform(fmt.begin(), fmt.end(), fmt.begin(), ::tolower);
    if (fmt == "gptq") {
      out.checkpoint_format = GptqFormat::kGptq;
    } else if (fmt == "gptq_v2") {
      out.checkpoint_format = GptqFormat::kGptqV2;
    } else {
      return f.error(fmt_key, "is '" + fmt + "'; supported: \"gptq\", \"gptq_v2\"");
    }
    if (out.bits != 4) return f.error("bits", "is " + std::to_string(out.bits) + "; only 4-bit is supported");
    if (out.group_size <= 0 && out.group_size != -1)
      return f.error("group_size", "must be a positive integer or -1, got " + std::to_string(out.group_size));
  } else {
    return f.error("quant_method", "is '" + method + "'; supported: \"awq\", \"gptq\"");
  }
  return out;
}

}  // namespace

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::kLlama: return "LlamaForCausalLM";
    case Architecture::kMistral: return "MistralForCausalLM";
    case Architecture::kQwen2: return "Qwen2ForCausalLM";
  }
  return "?";
}

const char* quant_method_name(QuantMethod m) {
  switch (m) {
    case QuantMethod::kNone: return "none";
    case QuantMethod::kAwq: return "awq";
    case QuantMethod::kGptq: return "gptq";
  }
  return "?";
}

int ModelConfig::uniform_sliding_window() const {
  if (layer_sliding_window.empty()) return 0;
  int w = layer_sliding_window[0];
  for (int x : layer_sliding_window)
    if (x != w) return 0;
  return w;
}

int ModelConfig::max_sliding_window() const {
  int w = 0;
  for (int x : layer_sliding_window) w = std::max(w, x);
  return w;
}

int64_t ModelConfig::kv_bytes_per_token(DType kv_dtype) const {
  return 2ll * num_layers * num_kv_heads * head_dim * static_cast<int64_t>(dtype_size(kv_dtype));
}

StatusOr<ModelConfig> ModelConfig::parse(const std::string& config_json,
                                         const std::string& generation_config_json,
                                         const std::string& quant_json, const std::string& quant_file_name,
                                         const std::string& dir) {
  const std::string prefix = dir.empty() ? "" : dir + "/";
  const std::string cfg_file = prefix + "config.json";
  ASSIGN_OR_RETURN(json j, parse_json(config_json, cfg_file));
  Fields f(j, cfg_file);
  ModelConfig c;
  c.model_dir = dir;

  if (!f.has("architectures")) return f.error("architectures", "is missing");
  const json& archs = f.at("architectures");
  if (!archs.is_array() || archs.size() != 1 || !archs[0].is_string())
    return f.error("architectures", "must be a list of one string, got " + archs.dump());
  const std::string arch = archs[0].get<std::string>();
  if (arch == "LlamaForCausalLM") {
    c.architecture = Architecture::kLlama;
  } else if (arch == "MistralForCausalLM") {
    c.architecture = Architecture::kMistral;
  } else if (arch == "Qwen2ForCausalLM") {
    c.architecture = Architecture::kQwen2;
  } else {
    return f.error("architectures", "names unsupported architecture '" + arch +
                                        "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
  }
  ASSIGN_OR_RETURN(c.model_type, f.string_or("model_type", ""));

  ASSIGN_OR_RETURN(c.vocab_size, f.positive_int("vocab_size"));
  ASSIGN_OR_RETURN(c.hidden_size, f.positive_int("hidden_size"));
  ASSIGN_OR_RETURN(c.intermediate_size, f.positive_int("intermediate_size"));
  ASSIGN_OR_RETURN(c.num_layers, f.positive_int("num_hidden_layers"));
  ASSIGN_OR_RETURN(c.num_heads, f.positive_int("num_attention_heads"));
  ASSIGN_OR_RETURN(c.num_kv_heads, f.positive_int_or("num_key_value_heads", c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0)
    return f.error("num_key_value_heads", "(" + std::to_string(c.num_kv_heads) +
                                              ") must divide num_attention_heads (" +
                                              std::to_string(c.num_heads) + ")");
  if (f.has("head_dim")) {
    ASSIGN_OR_RETURN(c.head_dim, f.positive_int("head_dim"));
  } else {
    if (c.hidden_size % c.num_heads != 0)
      return f.error("hidden_size", "must be divisible by num_attention_heads when head_dim is absent");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) return f.error("head_dim", "must be even for RoPE");
  ASSIGN_OR_RETURN(c.max_position_embeddings, f.positive_int_or("max_position_embeddings", 4096));
  ASSIGN_OR_RETURN(double eps, f.number_or("rms_norm_eps", 1e-6));
  if (!(eps > 0)) return f.error("rms_norm_eps", "must be positive");
  c.rms_norm_eps = static_cast<float>(eps);

  // transformers 5 folds rope settings into "rope_parameters"; published repos
  // use rope_theta + rope_scaling ({"type"|"rope_type", "factor"}).
  double theta = 10000.0;
  const json* scaling = nullptr;
  const char* scaling_key = "rope_scaling";
  if (f.has("rope_parameters") && f.at("rope_parameters").is_object()) {
    scaling = &f.at("rope_parameters");
    scaling_key = "rope_parameters";
    if (scaling->contains("rope_theta") && (*scaling)["rope_theta"].is_number())
      theta = (*scaling)["rope_theta"].get<double>();
  }
  if (f.has("rope_theta")) {
    ASSIGN_OR_RETURN(theta, f.number_or("rope_theta", 10000.0));
  }
  if (!(theta > 0)) return f.error("rope_theta", "must be positive");
  c.rope_theta = static_cast<float>(theta);
  if (f.has("rope_scaling")) {
    scaling = &f.at("rope_scaling");
    scaling_key = "rope_scaling";
  }
  if (scaling != nullptr) {
    if (!scaling->is_object()) return f.error(scaling_key, "must be an object or null");
    std::string type;
    if (scaling->contains("rope_type") && (*scaling)["rope_type"].is_string()) {
      type = (*scaling)["rope_type"].get<std::string>();
    } else if (scaling->contains("type") && (*scaling)["type"].is_string()) {
      type = (*scaling)["type"].get<std::string>();
    }
    if (type == "linear") {
      c.rope_scaling = RopeScalingType::kLinear;
      if (!scaling->contains("factor") || !(*scaling)["factor"].is_number() ||
          !((*scaling)["factor"].get<double>() > 0))
        return f.error(scaling_key, "has linear scaling without a positive 'factor'");
      c.rope_scaling_factor = static_cast<float>((*scaling)["factor"].get<double>());
    } else if (type.empty() || type == "default") {
      c.rope_scaling = RopeScalingType::kNone;
    } else {
      return f.error(scaling_key, "has unsupported rope type '" + type + "' (supported: linear)");
    }
  }

  // Sliding window per layer.
  c.layer_sliding_window.assign(c.num_layers, 0);
  int window = 0;
  if (f.has("sliding_window")) {
    ASSIGN_OR_RETURN(window, f.positive_int("sliding_window"));
  }
  if (c.architecture == Architecture::kMistral) {
    std::fill(c.layer_sliding_window.begin(), c.layer_sliding_window.end(), window);
  } else if (c.architecture == Architecture::kQwen2) {
    ASSIGN_OR_RETURN(bool use_window, f.bool_or("use_sliding_window", false));
    ASSIGN_OR_RETURN(int max_window_layers, f.int_or("max_window_layers", c.num_layers));
    if (use_window && window > 0) {
      for (int i = max_window_layers; i < c.num_layers; ++i) c.layer_sliding_window[i] = window;
    }
  }
  if (f.has("layer_types") && c.architecture != Architecture::kLlama) {
    const json& lt = f.at("layer_types");
    if (!lt.is_array() || static_cast<int>(lt.size()) != c.num_layers)
      return f.error("layer_types", "must list one entry per layer");
    for (int i = 0; i < c.num_layers; ++i) {
      const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : "";
      if (t == "sliding_attention") {
        if (window <= 0) return f.error("layer_types", "has a sliding layer but sliding_window is unset");
        c.layer_sliding_window[i] = window;
      } else if (t == "full_attention") {
        c.layer_sliding_window[i] = 0;
      } else {
        return f.error("layer_types", "has unknown entry " + lt[i].dump());
      }
    }
  }

  if (c.architecture == Architecture::kQwen2) {
    c.qkv_bias = true;
  } else if (c.architecture == Architecture::kLlama) {
    ASSIGN_OR_RETURN(bool bias, f.bool_or("attention_bias", false));
    c.qkv_bias = c.o_bias = bias;
    ASSIGN_OR_RETURN(bool mlp_bias, f.bool_or("mlp_bias", false));
    if (mlp_bias) return f.error("mlp_bias", "is true; MLP biases are not supported");
  }
  ASSIGN_OR_RETURN(std::string act, f.string_or("hidden_act", "silu"));
  if (act != "silu") return f.error("hidden_act", "is '" + act + "'; only \"silu\" is supported");
  ASSIGN_OR_RETURN(c.tie_word_embeddings, f.bool_or("tie_word_embeddings", false));

  ASSIGN_OR_RETURN(std::vector<int32_t> bos, f.id_list("bos_token_id"));
  if (!bos.empty()) c.bos_token_id = bos[0];
  ASSIGN_OR_RETURN(c.eos_token_ids, f.id_list("eos_token_id"));

  const char* dtype_key = f.has("torch_dtype") ? "torch_dtype" : "dtype";
  ASSIGN_OR_RETURN(std::string dtype, f.string_or(dtype_key, "float16"));
  auto dt = dtype_from_torch(dtype);
  if (!dt) return f.error(dtype_key, "is '" + dtype + "'; supported: float16, bfloat16, float32");
  c.torch_dtype = *dt;

  // generation_config.json: eos list and sampling defaults win.
  if (!generation_config_json.empty()) {
    const std::string gen_file = prefix + "generation_config.json";
    ASSIGN_OR_RETURN(json g, parse_json(generation_config_json, gen_file));
    Fields gf(g, gen_file);
    ASSIGN_OR_RETURN(std::vector<int32_t> geos, gf.id_list("eos_token_id"));
    if (!geos.empty()) c.eos_token_ids = geos;
    ASSIGN_OR_RETURN(std::vector<int32_t> gbos, gf.id_list("bos_token_id"));
    if (!gbos.empty()) c.bos_token_id = gbos[0];
    GenerationDefaults& d = c.generation;
    if (gf.has("do_sample")) {
      ASSIGN_OR_RETURN(bool v, gf.bool_or("do_sample", false));
      d.do_sample = v;
    }
    if (gf.has("temperature")) {
      ASSIGN_OR_RETURN(double v, gf.number_or("temperature", 1.0));
      d.temperature = static_cast<float>(v);
    }
    if (gf.has("top_p")) {
      ASSIGN_OR_RETURN(double v, gf.number_or("top_p", 1.0));
      d.top_p = static_cast<float>(v);
    }
    if (gf.has("top_k")) {
      ASSIGN_OR_RETURN(int v, gf.int_or("top_k", 0));
      d.top_k = v;
    }
    if (gf.has("repetition_penalty")) {
      ASSIGN_OR_RETURN(double v, gf.number_or("repetition_penalty", 1.0));
      d.repetition_penalty = static_cast<float>(v);
    }
    if (gf.has("max_new_tokens")) {
      ASSIGN_OR_RETURN(int v, gf.int_or("max_new_tokens", 0));
      d.max_new_tokens = v;
    }
  }

  // Quantization: config.json's quantization_config, else the older file.
  if (f.has("quantization_config")) {
    if (!f.at("quantization_config").is_object()) return f.error("quantization_config", "must be an object");
    ASSIGN_OR_RETURN(c.quant, parse_quant(f.at("quantization_config"), cfg_file + ":quantization_config"));
  } else if (!quant_json.empty()) {
    const std::string qfile = prefix + quant_file_name;
    ASSIGN_OR_RETURN(json q, parse_json(quant_json, qfile));
    ASSIGN_OR_RETURN(c.quant, parse_quant(q, qfile));
  }
  if (c.quant.is_int4()) {
    // Every quantized linear's K must split into whole groups, and AWQ packs N by 8.
    const int g = c.quant.group_size;
    const std::string gsrc = c.quant.source + ": group_size " + std::to_string(g);
    auto check_k = [&](int k, const char* what, const char* tensor) -> Status {
      if (g > 0 && k % g != 0 && !(c.quant.method == QuantMethod::kGptq && c.quant.desc_act))
        return invalid_argument(gsrc + " does not divide " + what + " (" + std::to_string(k) +
                                "), the input size K of tensor '" + tensor + "'");
      if (k % 8 != 0) return invalid_argument(cfg_file + ": " + what + " (" + std::to_string(k) +
                                              ") must be a multiple of 8 for int4 packing (tensor '" + tensor + "')");
      return ok_status();
    };
    RETURN_IF_ERROR(check_k(c.hidden_size, "hidden_size", "model.layers.0.self_attn.q_proj"));
    RETURN_IF_ERROR(check_k(c.intermediate_size, "intermediate_size", "model.layers.0.mlp.down_proj"));
    RETURN_IF_ERROR(check_k(c.q_size(), "num_attention_heads * head_dim", "model.layers.0.self_attn.o_proj"));
  }
  return c;
}

StatusOr<ModelConfig> ModelConfig::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return not_found(dir + ": not a directory");
  ASSIGN_OR_RETURN(std::optional<std::string> cfg, read_optional_file(root / "config.json"));
  if (!cfg) return not_found((root / "config.json").string() + ": missing (every checkpoint folder needs one)");
  ASSIGN_OR_RETURN(std::optional<std::string> gen, read_optional_file(root / "generation_config.json"));
  std::string quant_name = "quant_config.json";
  ASSIGN_OR_RETURN(std::optional<std::string> quant, read_optional_file(root / quant_name));
  if (!quant) {
    quant_name = "quantize_config.json";
    ASSIGN_OR_RETURN(quant, read_optional_file(root / quant_name));
  }
  return parse(*cfg, gen.value_or(""), quant.value_or(""), quant_name, dir);
}

}  // namespace tandem

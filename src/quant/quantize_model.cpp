#include "quant/quantize_model.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/dtype.h"
#include "engine/forward_batch.h"
#include "model/config.h"
#include "model/model_runner.h"
#include "model/quant.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "quant/capture_backend.h"
#include "quant/int4_group.h"
#include "tokenizer/tokenizer.h"

namespace tandem::quant {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A linear layer as fp32, being transformed by the search before quantization.
struct FloatLinear {
  std::string name;             // "model.layers.0.self_attn.q_proj"
  int64_t n = 0, k = 0;
  std::vector<float> w;         // [N, K]
  std::vector<float> bias;      // [N] or empty
  std::vector<float> clip;      // [N, K/G] or empty (no clipping)
};

std::vector<float> to_f32(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = load_as_f32(t.data, t.dtype, i);
  return out;
}

StatusOr<FloatLinear> float_linear(const LinearWeight& lw) {
  if (lw.format != WeightFormat::kDense) {
    return invalid_argument(lw.name + ": already quantized (" + weight_format_name(lw.format) +
                            "); quantize takes an fp16/bf16/fp32 checkpoint");
  }
  FloatLinear f;
  f.name = lw.name;
  f.n = lw.num_out;
  f.k = lw.num_in;
  f.w = to_f32(lw.weight);
  if (!lw.bias.empty()) f.bias = to_f32(lw.bias);
  return f;
}

void scale_columns(FloatLinear& l, const std::vector<float>& s) {
  for (int64_t r = 0; r < l.n; ++r)
    for (int64_t j = 0; j < l.k; ++j) l.w[r * l.k + j] *= s[j];
}

void divide_rows(FloatLinear& l, const std::vector<float>& s) {
  for (int64_t r = 0; r < l.n; ++r) {
    for (int64_t j = 0; j < l.k; ++j) l.w[r * l.k + j] /= s[r];
    if (!l.bias.empty()) l.bias[r] /= s[r];
  }
}

std::vector<float> divide_input(const CapturedInput& x, const std::vector<float>& s) {
  std::vector<float> out = x.data;
  for (int64_t r = 0; r < x.rows; ++r)
    for (int64_t j = 0; j < x.num_in; ++j) out[r * x.num_in + j] /= s[j];
  return out;
}

std::vector<uint8_t> f16_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> bytes(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h = f32_to_f16(v[i]);
    std::memcpy(&bytes[2 * i], &h, 2);
  }
  return bytes;
}

template <typename T>
std::vector<uint8_t> raw_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

StatusOr<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read calibration file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the calibration text through the fp model on a CaptureBackend and
// returns the inputs of every linear layer.
StatusOr<std::map<std::string, CapturedInput>> calibrate(const std::string& in_dir, const QuantizeOptions& o,
                                                         int* num_tokens) {
  if (o.calib_file.empty()) return invalid_argument("--method awq needs calibration text: --calib FILE");
  ASSIGN_OR_RETURN(std::string text, read_text(o.calib_file));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::load(in_dir));
  std::vector<int32_t> ids = tok->encode(text, /*add_special_tokens=*/true);
  if (ids.size() < 16) {
    return invalid_argument("calibration file " + o.calib_file + " has only " + std::to_string(ids.size()) +
                            " tokens; AWQ needs at least 16");
  }
  if (static_cast<int>(ids.size()) > o.calib_max_tokens) ids.resize(o.calib_max_tokens);
  *num_tokens = static_cast<int>(ids.size());

  const int page_size = 16;
  auto capture = std::make_unique<CaptureBackend>(make_cpu_backend(), o.calib_max_tokens);
  CaptureBackend* capture_ptr = capture.get();
  ModelRunnerOptions ro;
  ro.page_size = page_size;
  ro.num_pages = (o.calib_seq_len + page_size - 1) / page_size;
  ASSIGN_OR_RETURN(auto runner, LocalModelRunner::create(std::move(capture), in_dir, ro));
  std::vector<float> logits;
  for (size_t begin = 0; begin < ids.size(); begin += o.calib_seq_len) {
    size_t end = std::min(ids.size(), begin + static_cast<size_t>(o.calib_seq_len));
    std::vector<int32_t> seq(ids.begin() + begin, ids.begin() + end);
    logits.clear();
    RETURN_IF_ERROR(runner->forward(single_sequence_prefill(seq, page_size, false), &logits));
  }
  return capture_ptr->captured();
}

StatusOr<const CapturedInput*> input_of(const std::map<std::string, CapturedInput>& cap, const std::string& name) {
  auto it = cap.find(name);
  if (it == cap.end() || it->second.rows == 0) return internal_error("no calibration input recorded for " + name);
  return &it->second;
}

// AWQ for one group of layers sharing the input X: search s, fold 1/s into the
// previous op (fold_prev), multiply the layers' columns by s, and record it.
Status apply_awq_scales(const CapturedInput& x, std::vector<FloatLinear*> layers, int group_size, int grid,
                        const std::function<void(const std::vector<float>&)>& fold_prev, const std::string& label,
                        QuantizeReport* report, std::vector<float>* scales_out) {
  std::vector<const std::vector<float>*> ws;
  std::vector<int64_t> ns;
  for (FloatLinear* l : layers) {
    ws.push_back(&l->w);
    ns.push_back(l->n);
  }
  ScaleSearchResult r = search_scales(x.data, x.rows, x.num_in, ws, ns, group_size, grid);
  fold_prev(r.scales);
  for (FloatLinear* l : layers) scale_columns(*l, r.scales);
  report->scales.push_back({label, r.alpha, r.error_unscaled, r.error});
  *scales_out = r.scales;
  return ok_status();
}

Status write_config(const std::string& in_dir, const std::string& out_dir, int group_size) {
  std::ifstream in(in_dir + "/config.json");
  json cfg = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded()) return invalid_argument(in_dir + "/config.json: not valid JSON");
  cfg["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4},        {"group_size", group_size},
                                {"zero_point", true},    {"version", "gemm"}};
  cfg["torch_dtype"] = "float16";
  if (cfg.contains("dtype")) cfg["dtype"] = "float16";
  std::ofstream out(out_dir + "/config.json");
  out << cfg.dump(2) << "\n";
  if (!out) return internal_error("cannot write " + out_dir + "/config.json");
  return ok_status();
}

}  // namespace

StatusOr<QuantizeReport> quantize_model(const std::string& in_dir, const std::string& out_dir,
                                        const QuantizeOptions& o) {
  if (o.bits != 4) return invalid_argument("--bits " + std::to_string(o.bits) + " is not supported (only 4)");
  if (o.group_size <= 0 || o.group_size % 8 != 0) {
    return invalid_argument("--group-size must be a positive multiple of 8, got " + std::to_string(o.group_size));
  }
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::load(in_dir));
  if (config.quant.is_int4()) {
    return invalid_argument(in_dir + "/config.json: the checkpoint is already quantized (" +
                            quant_method_name(config.quant.method) + ")");
  }
  ASSIGN_OR_RETURN(ModelWeightsHost host, load_weights_host(config, in_dir));
  for (int64_t k : {static_cast<int64_t>(config.hidden_size), static_cast<int64_t>(config.intermediate_size),
                    static_cast<int64_t>(config.q_size())}) {
    if (k % o.group_size != 0) {
      return invalid_argument("--group-size " + std::to_string(o.group_size) + " does not divide an input size " +
                              std::to_string(k) + " of " + in_dir);
    }
  }

  QuantizeReport report;
  std::map<std::string, CapturedInput> captured;
  if (o.method == QuantizeMethod::kAwq) {
    ASSIGN_OR_RETURN(captured, calibrate(in_dir, o, &report.calib_tokens));
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return internal_error("cannot create " + out_dir + ": " + ec.message());

  std::vector<SafetensorsTensorData> out;
  auto add_f16 = [&](const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    out.push_back({name, DType::kF16, std::move(shape), f16_bytes(v)});
  };
  add_f16("model.embed_tokens.weight", to_f32(host.embed), {host.embed.dim(0), host.embed.dim(1)});

  for (int i = 0; i < config.num_layers; ++i) {
    const LayerWeightsHost& lh = host.layers[i];
    std::vector<float> input_norm = to_f32(lh.input_norm), post_norm = to_f32(lh.post_norm);
    ASSIGN_OR_RETURN(FloatLinear q, float_linear(lh.q));
    ASSIGN_OR_RETURN(FloatLinear k, float_linear(lh.k));
    ASSIGN_OR_RETURN(FloatLinear v, float_linear(lh.v));
    ASSIGN_OR_RETURN(FloatLinear oproj, float_linear(lh.o));
    ASSIGN_OR_RETURN(FloatLinear gate, float_linear(lh.gate));
    ASSIGN_OR_RETURN(FloatLinear up, float_linear(lh.up));
    ASSIGN_OR_RETURN(FloatLinear down, float_linear(lh.down));

    if (o.method == QuantizeMethod::kAwq) {
      const std::string p = "model.layers." + std::to_string(i);
      std::vector<float> s;
      // Clipping is searched on the scaled layers with the scaled inputs
      // (X / s); q and k are left unclipped, as AutoAWQ does.
      ASSIGN_OR_RETURN(const CapturedInput* x_qkv, input_of(captured, p + ".self_attn.q_proj"));
      RETURN_IF_ERROR(apply_awq_scales(
          *x_qkv, {&q, &k, &v}, o.group_size, o.search_grid,
          [&](const std::vector<float>& sc) { for (size_t j = 0; j < sc.size(); ++j) input_norm[j] /= sc[j]; },
          p + ".self_attn.{q,k,v}_proj", &report, &s));
      std::vector<float> x_v = divide_input(*x_qkv, s);

      ASSIGN_OR_RETURN(const CapturedInput* x_o, input_of(captured, p + ".self_attn.o_proj"));
      std::vector<float> x_o_scaled = x_o->data;
      if (config.num_heads == config.num_kv_heads) {
        // o_proj's inputs are v_proj's outputs (no GQA repeat): fold into v's rows.
        RETURN_IF_ERROR(apply_awq_scales(*x_o, {&oproj}, o.group_size, o.search_grid,
                                         [&](const std::vector<float>& sc) { divide_rows(v, sc); },
                                         p + ".self_attn.o_proj", &report, &s));
        x_o_scaled = divide_input(*x_o, s);
      }
      ASSIGN_OR_RETURN(const CapturedInput* x_mlp, input_of(captured, p + ".mlp.gate_proj"));
      RETURN_IF_ERROR(apply_awq_scales(
          *x_mlp, {&gate, &up}, o.group_size, o.search_grid,
          [&](const std::vector<float>& sc) { for (size_t j = 0; j < sc.size(); ++j) post_norm[j] /= sc[j]; },
          p + ".mlp.{gate,up}_proj", &report, &s));
      std::vector<float> x_mlp_scaled = divide_input(*x_mlp, s);
      ASSIGN_OR_RETURN(const CapturedInput* x_down, input_of(captured, p + ".mlp.down_proj"));
      RETURN_IF_ERROR(apply_awq_scales(*x_down, {&down}, o.group_size, o.search_grid,
                                       [&](const std::vector<float>& sc) { divide_rows(up, sc); },
                                       p + ".mlp.down_proj", &report, &s));
      std::vector<float> x_down_scaled = divide_input(*x_down, s);

      const int64_t rows_qkv = x_qkv->rows, rows_o = x_o->rows, rows_mlp = x_mlp->rows, rows_down = x_down->rows;
      v.clip = search_clip(x_v, rows_qkv, v.k, v.w, v.n, o.group_size, o.search_grid);
      oproj.clip = search_clip(x_o_scaled, rows_o, oproj.k, oproj.w, oproj.n, o.group_size, o.search_grid);
      gate.clip = search_clip(x_mlp_scaled, rows_mlp, gate.k, gate.w, gate.n, o.group_size, o.search_grid);
      up.clip = search_clip(x_mlp_scaled, rows_mlp, up.k, up.w, up.n, o.group_size, o.search_grid);
      down.clip = search_clip(x_down_scaled, rows_down, down.k, down.w, down.n, o.group_size, o.search_grid);
    }

    const std::string lp = "model.layers." + std::to_string(i) + ".";
    add_f16(lp + "input_layernorm.weight", input_norm, {config.hidden_size});
    add_f16(lp + "post_attention_layernorm.weight", post_norm, {config.hidden_size});
    for (FloatLinear* l : {&q, &k, &v, &oproj, &gate, &up, &down}) {
      QuantizedLinear ql = quantize_rtn(l->w, l->n, l->k, o.group_size, l->clip.empty() ? nullptr : &l->clip);
      const int64_t groups = l->k / o.group_size;
      out.push_back({l->name + ".qweight", DType::kI32, {l->k, l->n / 8}, raw_bytes(pack_awq(ql.q, l->k, l->n))});
      out.push_back({l->name + ".qzeros", DType::kI32, {groups, l->n / 8}, raw_bytes(pack_awq(ql.zeros, groups, l->n))});
      out.push_back({l->name + ".scales", DType::kF16, {groups, l->n}, raw_bytes(ql.scales)});
      if (!l->bias.empty()) add_f16(l->name + ".bias", l->bias, {l->n});
      ++report.num_linears;
    }
  }
  add_f16("model.norm.weight", to_f32(host.final_norm), {config.hidden_size});
  if (!config.tie_word_embeddings) {
    add_f16("lm_head.weight", to_f32(host.lm_head.weight), {host.lm_head.num_out, host.lm_head.num_in});
  }
  RETURN_IF_ERROR(write_safetensors(out_dir + "/model.safetensors", out));
  RETURN_IF_ERROR(write_config(in_dir, out_dir, o.group_size));
  for (const char* f : {"generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                        "special_tokens_map.json"}) {
    if (fs::exists(in_dir + "/" + f)) {
      fs::copy_file(in_dir + "/" + f, out_dir + "/" + f, fs::copy_options::overwrite_existing, ec);
      if (ec) return internal_error("cannot copy " + std::string(f) + " to " + out_dir + ": " + ec.message());
    }
  }
  return report;
}

}  // namespace tandem::quant

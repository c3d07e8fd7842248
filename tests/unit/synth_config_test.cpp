// tandem synth (synth_from_config) and --load-format dummy on the CPU backend:
// the written checkpoint holds exactly the planner's tensors and loads through
// the real loader; dummy weights take the same prepare path with the same bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "backend/random_weights.h"
#include "engine/forward_batch.h"
#include "memory/weights.h"
#include "model/model_runner.h"
#include "model/safetensors.h"
#include "model/synth_config.h"
#include "test_util.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;

// A small Llama-family config (all linear dims multiples of 128 for int4).
json small_config(const std::string& arch = "LlamaForCausalLM") {
  return {{"architectures", {arch}},
          {"model_type", arch == "Qwen2ForCausalLM" ? "qwen2" : "llama"},
          {"hidden_size", 256},
          {"intermediate_size", 384},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 300},
          {"max_position_embeddings", 512},
          {"rms_norm_eps", 1e-5},
          {"torch_dtype", "bfloat16"},
          {"tie_word_embeddings", false}};
}

std::string write_json(const std::string& path, const json& j) {
  std::ofstream(path) << j.dump(2);
  return path;
}

StatusOr<SynthConfigResult> synth(const std::string& config, const std::string& out, const std::string& quant,
                                  uint64_t shard = 5000000000ull, bool desc_act = false) {
  SynthConfigOptions o;
  o.config_path = config;
  o.out_dir = out;
  o.quant = quant;
  o.max_shard_bytes = shard;
  o.desc_act = desc_act;
  o.threads = 3;
  return synth_from_config(o);
}

// Every tensor of the folder equals the planner's list (names, shapes, dtypes),
// and their bytes sum to weight_bytes; the real loader accepts it.
void expect_matches_planner(const std::string& dir) {
  auto cfg = ModelConfig::load(dir);
  ASSERT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(ck.ok()) << ck.status().to_string();
  std::map<std::string, memory::TensorSpec> want;
  for (auto& t : memory::checkpoint_tensors(*cfg)) want[t.name] = t;
  const std::vector<std::string> names = (*ck)->names();
  std::set<std::string> have(names.begin(), names.end());
  EXPECT_EQ(have.size(), want.size());
  int64_t bytes = 0;
  for (const auto& [name, spec] : want) {
    auto v = (*ck)->get(name);
    ASSERT_TRUE(v.ok()) << name;
    EXPECT_EQ(v->dtype, spec.dtype) << name;
    ASSERT_EQ(v->ndim, static_cast<int>(spec.shape.size())) << name;
    for (int i = 0; i < v->ndim; ++i) EXPECT_EQ(v->shape[i], spec.shape[i]) << name;
    bytes += static_cast<int64_t>(v->nbytes());
  }
  EXPECT_EQ(bytes, memory::weight_bytes(*cfg));
  auto host = load_weights_host(*cfg, dir);
  EXPECT_TRUE(host.ok()) << host.status().to_string();
}

std::vector<float> run_prefill(const std::string& path, bool dummy, size_t* weight_bytes = nullptr) {
  ModelRunnerOptions ro;
  ro.num_pages = 4;
  ro.page_size = 16;
  ro.load.dummy = dummy;
  auto r = LocalModelRunner::create(make_cpu_backend(2), path, ro);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return {};
  if (weight_bytes) *weight_bytes = (*r)->model().weight_bytes();
  std::vector<float> logits;
  Status s = (*r)->forward(single_sequence_prefill({1, 5, 7, 299, 3}, 16, false), &logits);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return logits;
}

TEST(SynthConfig, AwqMatchesPlannerAndLoads) {
  TempDir d("synth_awq");
  const std::string cfg = write_json(d.file("cfg.json"), small_config());
  auto r = synth(cfg, d.file("out"), "awq");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->num_shards, 1);
  EXPECT_TRUE(fs::exists(d.file("out/model.safetensors")));
  expect_matches_planner(d.file("out"));
  auto c = ModelConfig::load(d.file("out"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->quant.method, QuantMethod::kAwq);
  EXPECT_EQ(c->quant.group_size, 128);
  EXPECT_EQ(c->torch_dtype, DType::kF16);  // int4 exports are fp16
  EXPECT_EQ(r->total_bytes, memory::weight_bytes(*c));
  // Finite logits through the real loader and forward pass.
  for (float x : run_prefill(d.file("out"), false)) ASSERT_TRUE(std::isfinite(x));
}

TEST(SynthConfig, GptqActOrderShardedMatchesPlanner) {
  TempDir d("synth_gptq");
  const std::string cfg = write_json(d.file("cfg.json"), small_config());
  auto r = synth(cfg, d.file("out"), "gptq", /*shard=*/400000, /*desc_act=*/true);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_GT(r->num_shards, 1);
  ASSERT_TRUE(fs::exists(d.file("out/model.safetensors.index.json")));
  std::ifstream idx(d.file("out/model.safetensors.index.json"));
  const json j = json::parse(idx);
  EXPECT_EQ(j["metadata"]["total_size"].get<int64_t>(), r->total_bytes);
  expect_matches_planner(d.file("out"));
  auto c = ModelConfig::load(d.file("out"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->quant.desc_act);
  // Symmetric v1 zeros are stored as 7 (zero 8 - 1).
  auto ck = Checkpoint::open(d.file("out"));
  ASSERT_TRUE(ck.ok());
  auto z = (*ck)->get("model.layers.1.mlp.down_proj.qzeros");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(static_cast<uint32_t>(read_i32(*z, 0)), 0x77777777u);
  for (float x : run_prefill(d.file("out"), false)) ASSERT_TRUE(std::isfinite(x));
}

TEST(SynthConfig, NoneKeepsDtypeAndDropsQuantization) {
  TempDir d("synth_none");
  json j = small_config("Qwen2ForCausalLM");  // q/k/v bias
  j["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}};
  const std::string cfg = write_json(d.file("cfg.json"), j);
  auto r = synth(cfg, d.file("out"), "none");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_matches_planner(d.file("out"));
  auto c = ModelConfig::load(d.file("out"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->quant.is_int4());
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
  auto ck = Checkpoint::open(d.file("out"));
  ASSERT_TRUE(ck.ok());
  EXPECT_TRUE((*ck)->has("model.layers.0.self_attn.q_proj.bias"));
}

TEST(SynthConfig, SameSeedSameBytes) {
  TempDir d("synth_seed");
  const std::string cfg = write_json(d.file("cfg.json"), small_config());
  ASSERT_TRUE(synth(cfg, d.file("a"), "awq").ok());
  ASSERT_TRUE(synth(cfg, d.file("b"), "awq").ok());
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_EQ(read(d.file("a/model.safetensors")), read(d.file("b/model.safetensors")));
}

TEST(SynthConfig, BadConfigsNameTheField) {
  TempDir d("synth_bad");
  json j = small_config();
  j.erase("hidden_size");
  auto r = synth(write_json(d.file("a.json"), j), d.file("out"), "awq");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hidden_size"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("a.json"), std::string::npos) << r.status().message();

  j = small_config();
  j["intermediate_size"] = 200;  // down_proj in features not a multiple of the group
  r = synth(write_json(d.file("b.json"), j), d.file("out"), "awq");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mlp.down_proj"), std::string::npos) << r.status().message();

  r = synth(d.file("missing.json"), d.file("out"), "awq");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing.json"), std::string::npos) << r.status().message();
}

TEST(DummyLoad, SameBytesAsTheCheckpointAndFinite) {
  TempDir d("dummy");
  json j = small_config();
  j["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128},
                              {"zero_point", true}, {"version", "gemm"}};
  j["torch_dtype"] = "float16";
  fs::create_directories(d.file("cfgonly"));
  const std::string bare = write_json(d.file("model.json"), j);
  write_json(d.file("cfgonly/config.json"), j);
  ASSERT_TRUE(synth(bare, d.file("ck"), "config").ok());
  size_t from_file = 0, from_dummy = 0, from_bare = 0;
  run_prefill(d.file("ck"), false, &from_file);
  const std::vector<float> a = run_prefill(d.file("cfgonly"), true, &from_dummy);
  const std::vector<float> b = run_prefill(bare, true, &from_bare);
  EXPECT_EQ(from_dummy, from_file);
  EXPECT_EQ(from_bare, from_file);
  ASSERT_EQ(a.size(), 300u);
  for (float x : a) ASSERT_TRUE(std::isfinite(x));
  EXPECT_EQ(a, b);  // same seed, same weights

  // Without --load-format dummy a folder without weights is an error naming it.
  ModelRunnerOptions ro;
  auto r = LocalModelRunner::create(make_cpu_backend(1), d.file("cfgonly"), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cfgonly"), std::string::npos) << r.status().message();
}

TEST(DummyLoad, DenseGptqActOrderAndBadConfig) {
  TempDir d("dummy2");
  json j = small_config("Qwen2ForCausalLM");
  for (float x : run_prefill(write_json(d.file("dense.json"), j), true)) ASSERT_TRUE(std::isfinite(x));
  j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}, {"desc_act", true}};
  for (float x : run_prefill(write_json(d.file("gptq.json"), j), true)) ASSERT_TRUE(std::isfinite(x));
  j["intermediate_size"] = 200;
  ModelRunnerOptions ro;
  ro.load.dummy = true;
  auto r = LocalModelRunner::create(make_cpu_backend(1), write_json(d.file("bad.json"), j), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("down_proj"), std::string::npos) << r.status().message();
}

TEST(RandomWeights, ValuesFollowTheConventions) {
  LinearWeight spec;
  spec.format = WeightFormat::kAwqGemm;
  spec.name = "t";
  spec.num_out = 16;
  spec.num_in = 256;
  spec.group_size = 128;
  spec.qweight = TensorView(nullptr, DType::kI32, {256, 2});
  spec.qzeros = TensorView(nullptr, DType::kI32, {2, 2});
  spec.scales = TensorView(nullptr, DType::kF16, {2, 16});
  const RandomLinearHost h = random_linear_host(spec, 42);
  ASSERT_TRUE(validate_linear(h.weight).ok());
  std::set<int> qs;
  for (int64_t k = 0; k < 256; ++k)
    for (int64_t n = 0; n < 16; ++n) qs.insert(awq_q(h.weight, k, n));
  EXPECT_EQ(qs.size(), 16u);  // every nibble value occurs
  for (int64_t g = 0; g < 2; ++g)
    for (int64_t n = 0; n < 16; ++n) {
      const int z = awq_zero(h.weight, g, n);
      EXPECT_TRUE(z >= kRandomZeroLo && z <= kRandomZeroHi) << z;
      const float s = load_as_f32(h.weight.scales.data, DType::kF16, g * 16 + n);
      EXPECT_TRUE(s >= random_scale_lo(256) * 0.99f && s <= random_scale_hi(256) * 1.01f) << s;
    }
  // Act-order g_idx: every group has exactly G rows.
  std::vector<int32_t> g(512);
  random_group_index_host(g.data(), 512, 128, 7);
  std::vector<int> count(4, 0);
  for (int32_t x : g) ++count.at(x);
  for (int c : count) EXPECT_EQ(c, 128);
}

}  // namespace
}  // namespace tandem

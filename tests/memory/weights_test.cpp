// Weight bytes of the four seed models. The expected totals were computed by
// hand (tensor shapes x dtype sizes, see the comments); the test also builds
// its own tensor list from FORMATS.md and checks the planner's list tensor by
// tensor, so a wrong shape cannot hide behind a right total.
#include "memory/weights.h"

#include <map>

#include <gtest/gtest.h>

namespace tandem::memory {
namespace {

std::string config_path(const std::string& name) {
  return std::string(TANDEM_SOURCE_DIR) + "/configs/models/" + name + ".json";
}

ModelConfig load(const std::string& name) {
  auto c = load_model_config(config_path(name));
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return c.ok() ? *c : ModelConfig{};
}

struct Expected {
  int64_t numel_bytes;  // dtype bytes x elements
  std::vector<int64_t> shape;
};

// The checkpoint as FORMATS.md describes it, written independently of weights.cpp.
std::map<std::string, Expected> expected_tensors(int64_t hidden, int64_t inter, int64_t layers, int64_t heads,
                                                 int64_t kv_heads, int64_t vocab, bool awq, bool qkv_bias) {
  std::map<std::string, Expected> t;
  const int64_t d = 128, G = 128;
  auto dense = [&](const std::string& n, std::vector<int64_t> shape) {
    int64_t e = 2;
    for (auto x : shape) e *= x;
    t[n] = {e, shape};
  };
  dense("model.embed_tokens.weight", {vocab, hidden});
  dense("lm_head.weight", {vocab, hidden});
  dense("model.norm.weight", {hidden});
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    dense(p + "input_layernorm.weight", {hidden});
    dense(p + "post_attention_layernorm.weight", {hidden});
    const std::pair<const char*, std::pair<int64_t, int64_t>> lin[] = {
        {"self_attn.q_proj", {hidden, heads * d}},   {"self_attn.k_proj", {hidden, kv_heads * d}},
        {"self_attn.v_proj", {hidden, kv_heads * d}}, {"self_attn.o_proj", {heads * d, hidden}},
        {"mlp.gate_proj", {hidden, inter}},          {"mlp.up_proj", {hidden, inter}},
        {"mlp.down_proj", {inter, hidden}}};
    for (const auto& [name, kn] : lin) {
      const auto [K, N] = kn;
      const std::string n = p + name;
      if (awq) {
        t[n + ".qweight"] = {K * (N / 8) * 4, {K, N / 8}};
        t[n + ".qzeros"] = {(K / G) * (N / 8) * 4, {K / G, N / 8}};
        t[n + ".scales"] = {(K / G) * N * 2, {K / G, N}};
      } else {
        dense(n + ".weight", {N, K});
      }
      const std::string lname = name;
      const bool is_qkv = lname == "self_attn.q_proj" || lname == "self_attn.k_proj" || lname == "self_attn.v_proj";
      if (qkv_bias && is_qkv) dense(n + ".bias", {N});
    }
  }
  return t;
}

void expect_same_tensors(const ModelConfig& c, const std::map<std::string, Expected>& want) {
  const auto got = checkpoint_tensors(c);
  EXPECT_EQ(got.size(), want.size());
  int64_t sum = 0;
  for (const TensorSpec& t : got) {
    auto it = want.find(t.name);
    ASSERT_NE(it, want.end()) << "unexpected tensor " << t.name;
    EXPECT_EQ(t.shape, it->second.shape) << t.name;
    EXPECT_EQ(t.bytes(), it->second.numel_bytes) << t.name;
    sum += it->second.numel_bytes;
  }
  EXPECT_EQ(weight_bytes(c), sum);
}

TEST(Weights, DeepSeekCoder33bAwq) {
  const ModelConfig c = load("deepseek-coder-33b-instruct-awq");
  // Per layer, K x N over q 7168x7168, k/v 7168x1024, o 7168x7168, gate/up 7168x19200, down 19200x7168
  // = 531,628,032; qweight K*N/2, qzeros K*N/256, scales K*N/64 bytes -> 274,042,080 per layer x 62,
  // + embed and lm_head 2 x 32256 x 7168 x 2 + norms (2 x 62 + 1) x 7168 x 2.
  EXPECT_EQ(weight_bytes(c), 18'008'653'824);
  expect_same_tensors(c, expected_tensors(7168, 19200, 62, 56, 8, 32256, true, false));
}

TEST(Weights, Mistral7bAwq) {
  const ModelConfig c = load("mistral-7b-v0.1-awq");
  EXPECT_EQ(weight_bytes(c), 4'150'796'288);  // the published model.safetensors is 4.15 GB
  expect_same_tensors(c, expected_tensors(4096, 14336, 32, 32, 8, 32000, true, false));
}

TEST(Weights, Qwen25Coder32bAwq) {
  const ModelConfig c = load("qwen2.5-coder-32b-instruct-awq");
  EXPECT_EQ(weight_bytes(c), 19'328'804'864);
  expect_same_tensors(c, expected_tensors(5120, 27648, 64, 40, 8, 152064, true, true));
}

TEST(Weights, Qwen25_7bBf16) {
  const ModelConfig c = load("qwen2.5-7b-instruct");
  EXPECT_EQ(weight_bytes(c), 15'231'233'024);  // 7.6156B parameters x 2 bytes
  expect_same_tensors(c, expected_tensors(3584, 18944, 28, 28, 4, 152064, false, true));
  for (const TensorSpec& t : checkpoint_tensors(c)) EXPECT_EQ(t.dtype, DType::kBF16) << t.name;
}

TEST(Weights, CudaResidentBytes) {
  // Int4 zeros: I32 [K/G, N/8] (N/2 bytes a group) become 16-bit [N, K/G] (2N bytes):
  // +1.5 x (K/G) x N per linear. DeepSeek per layer: (56 x 7168 x 2 + 56 x 1024 x 2
  // + 56 x 19200 x 2 + 150 x 7168) x 1.5 = 6,214,656. Norms become fp32: +2 bytes each.
  EXPECT_EQ(cuda_resident_weight_bytes(load("deepseek-coder-33b-instruct-awq")),
            18'008'653'824 + 62 * 6'214'656 + 125 * 7168 * 2);
  EXPECT_EQ(cuda_resident_weight_bytes(load("mistral-7b-v0.1-awq")), 4'150'796'288 + 32 * 2'555'904 + 65 * 4096 * 2);
  EXPECT_EQ(cuda_resident_weight_bytes(load("qwen2.5-7b-instruct")), 15'231'233'024 + 57 * 3584 * 2);
}

TEST(Weights, KvBytesPerTokenAndPages) {
  // 2 (K, V) x layers x kv_heads x 128 x 2 bytes.
  EXPECT_EQ(load("mistral-7b-v0.1-awq").kv_bytes_per_token(DType::kF16), 128 * 1024);
  EXPECT_EQ(load("deepseek-coder-33b-instruct-awq").kv_bytes_per_token(DType::kF16), 248 * 1024);
  EXPECT_EQ(load("qwen2.5-7b-instruct").kv_bytes_per_token(DType::kF16), 56 * 1024);
  EXPECT_EQ(load("qwen2.5-coder-32b-instruct-awq").kv_bytes_per_token(DType::kF16), 256 * 1024);
  // A 16-token page: 3.875 MiB for DeepSeek-33B, 2 MiB for Mistral-7B.
  EXPECT_EQ(16 * load("deepseek-coder-33b-instruct-awq").kv_bytes_per_token(DType::kF16), 3968 * 1024);
  EXPECT_EQ(16 * load("mistral-7b-v0.1-awq").kv_bytes_per_token(DType::kF16), 2 * 1024 * 1024);
}

TEST(Weights, TiedHeadCountedOnce) {
  ModelConfig c = load("qwen2.5-7b-instruct");
  const int64_t untied = weight_bytes(c);
  c.tie_word_embeddings = true;
  EXPECT_EQ(untied - weight_bytes(c), 152064LL * 3584 * 2);
}

TEST(Weights, GptqAddsGIdx) {
  ModelConfig c = load("mistral-7b-v0.1-awq");
  const int64_t awq = weight_bytes(c);
  QuantConfig gptq;
  gptq.method = QuantMethod::kGptq;
  gptq.bits = 4;
  gptq.group_size = 128;
  auto g = with_quant(c, gptq);
  ASSERT_TRUE(g.ok());
  // Same packed bytes as AWQ, plus g_idx int32 [K] per linear: K summed over the 7 linears.
  const int64_t k_sum = 4096 * 6 + 14336;
  EXPECT_EQ(weight_bytes(*g) - awq, 32 * k_sum * 4);
  EXPECT_EQ(describe_weights(*g), "gptq int4 g128");
}

TEST(Weights, AwqAlternativeOfBf16Model) {
  const ModelConfig c = load("qwen2.5-7b-instruct");
  QuantConfig awq;
  awq.method = QuantMethod::kAwq;
  awq.bits = 4;
  awq.group_size = 128;
  auto q = with_quant(c, awq);
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_LT(weight_bytes(*q), weight_bytes(c) / 2);
  awq.group_size = 100;  // does not divide 3584
  EXPECT_FALSE(with_quant(c, awq).ok());
}

TEST(Weights, LoadErrorsNameTheFile) {
  auto missing = load_model_config("/nonexistent/model");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/model"), std::string::npos);
  // A folder is read as its config.json.
  auto folder = load_model_config(std::string(TANDEM_SOURCE_DIR) + "/configs");
  EXPECT_FALSE(folder.ok());
  EXPECT_NE(folder.status().message().find("config.json"), std::string::npos);
  // A non-config JSON file: the message names that file.
  auto bad = load_model_config(std::string(TANDEM_SOURCE_DIR) + "/configs/models/README.md");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("README.md"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace tandem::memory

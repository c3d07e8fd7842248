#include "model/config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace tandem {
namespace {

const char* kLlama = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
  "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "rope_scaling": {"type": "linear", "factor": 4.0},
  "bos_token_id": 1, "eos_token_id": [2, 7], "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "max_position_embeddings": 16384})";

TEST(ModelConfig, LlamaFields) {
  auto c = ModelConfig::parse(kLlama, "", "", "");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, Architecture::kLlama);
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // derived
  EXPECT_FLOAT_EQ(c->rope_theta, 500000.0f);
  EXPECT_EQ(c->rope_scaling, RopeScalingType::kLinear);
  EXPECT_FLOAT_EQ(c->rope_scaling_factor, 4.0f);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{2, 7}));
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_EQ(c->torch_dtype, DType::kBF16);
  EXPECT_EQ(c->uniform_sliding_window(), 0);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_FALSE(c->quant.is_int4());
  EXPECT_EQ(c->kv_bytes_per_token(DType::kF16), 2ll * 32 * 8 * 128 * 2);
}

TEST(ModelConfig, RopeTypeKeyAndExplicitHeadDim) {
  std::string j = kLlama;
  j.replace(j.find("\"type\""), 6, "\"rope_type\"");
  j.replace(j.find("\"torch_dtype\""), 0, "\"head_dim\": 64, ");
  auto c = ModelConfig::parse(j, "", "", "");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->rope_scaling, RopeScalingType::kLinear);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->q_size(), 32 * 64);
}

TEST(ModelConfig, GenerationConfigWins) {
  auto c = ModelConfig::parse(kLlama, R"({"eos_token_id": [128001, 128009], "do_sample": true,
                                          "temperature": 0.6, "top_p": 0.9})", "", "");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{128001, 128009}));
  EXPECT_TRUE(*c->generation.do_sample);
  EXPECT_FLOAT_EQ(*c->generation.temperature, 0.6f);
  EXPECT_FLOAT_EQ(*c->generation.top_p, 0.9f);
  EXPECT_FALSE(c->generation.top_k.has_value());
}

TEST(ModelConfig, MistralWindowAndQwenDisabledWindow) {
  auto m = ModelConfig::parse(R"({"architectures": ["MistralForCausalLM"], "vocab_size": 100, "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
      "sliding_window": 4096, "torch_dtype": "float16"})", "", "", "");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->uniform_sliding_window(), 4096);
  auto q = ModelConfig::parse(R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 100, "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
      "sliding_window": 32768, "use_sliding_window": false, "max_window_layers": 1, "tie_word_embeddings": true,
      "torch_dtype": "bfloat16"})", "", "", "");
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->max_sliding_window(), 0);
  EXPECT_TRUE(q->qkv_bias);
  EXPECT_TRUE(q->tie_word_embeddings);
  // Enabled: layers >= max_window_layers slide (transformers' layer_types rule).
  auto q2 = ModelConfig::parse(R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 100, "hidden_size": 64,
      "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
      "sliding_window": 16, "use_sliding_window": true, "max_window_layers": 1})", "", "", "");
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->layer_sliding_window, (std::vector<int>{0, 16, 16}));
  EXPECT_EQ(q2->uniform_sliding_window(), 0);
}

TEST(ModelConfig, QuantizationSources) {
  std::string base = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 256,
      "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 2, "torch_dtype": "float16")";
  auto awq = ModelConfig::parse(base + R"(, "quantization_config": {"quant_method": "awq", "bits": 4,
      "group_size": 64, "zero_point": true, "version": "gemm"}})", "", "", "");
  ASSERT_TRUE(awq.ok()) << awq.status().to_string();
  EXPECT_EQ(awq->quant.method, QuantMethod::kAwq);
  EXPECT_EQ(awq->quant.group_size, 64);
  EXPECT_EQ(awq->quant.zero_offset(), 0);
  auto old_awq = ModelConfig::parse(base + "}", "",
                                    R"({"zero_point": true, "q_group_size": 128, "w_bit": 4, "version": "GEMM"})",
                                    "quant_config.json");
  ASSERT_TRUE(old_awq.ok()) << old_awq.status().to_string();
  EXPECT_EQ(old_awq->quant.method, QuantMethod::kAwq);
  EXPECT_EQ(old_awq->quant.group_size, 128);
  EXPECT_EQ(old_awq->quant.source, "quant_config.json");
  auto gptq = ModelConfig::parse(base + "}", "",
                                 R"({"bits": 4, "group_size": 128, "desc_act": true, "sym": false,
                                     "damp_percent": 0.01, "checkpoint_format": "gptq_v2"})",
                                 "quantize_config.json");
  ASSERT_TRUE(gptq.ok()) << gptq.status().to_string();
  EXPECT_EQ(gptq->quant.method, QuantMethod::kGptq);
  EXPECT_TRUE(gptq->quant.desc_act);
  EXPECT_FALSE(gptq->quant.sym);
  EXPECT_EQ(gptq->quant.checkpoint_format, GptqFormat::kGptqV2);
  EXPECT_EQ(gptq->quant.zero_offset(), 0);
  auto v1 = ModelConfig::parse(base + R"(, "quantization_config": {"quant_method": "gptq", "bits": 4,
      "group_size": -1, "desc_act": false, "sym": true}})", "", "", "");
  ASSERT_TRUE(v1.ok()) << v1.status().to_string();
  EXPECT_EQ(v1->quant.zero_offset(), 1);
  EXPECT_EQ(v1->quant.group_size_for(512), 512);
}

// Each malformed config gives one line naming the file and the field.
struct BadCase {
  const char* what;
  std::string config;
  std::string quant;
  const char* expect;
};

TEST(ModelConfig, BadInputNamesFileAndField) {
  const std::string ok_head = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "intermediate_size": 128,
      "num_hidden_layers": 1, "num_attention_heads": 4, )";
  const std::vector<BadCase> cases = {
      {"unknown architecture", R"({"architectures": ["GPT2LMHeadModel"]})", "",
       "field 'architectures' names unsupported architecture 'GPT2LMHeadModel'"},
      {"missing hidden", ok_head + R"("torch_dtype": "float16"})", "", "field 'hidden_size' is missing"},
      {"negative hidden", ok_head + R"("hidden_size": -64})", "", "field 'hidden_size' must be a positive integer"},
      {"kv heads", ok_head + R"("hidden_size": 64, "num_key_value_heads": 3})", "",
       "field 'num_key_value_heads' (3) must divide num_attention_heads (4)"},
      {"unknown rope", ok_head + R"("hidden_size": 64, "rope_scaling": {"rope_type": "yarn", "factor": 2}})", "",
       "unsupported rope type 'yarn'"},
      {"unknown quant", ok_head + R"("hidden_size": 64, "quantization_config": {"quant_method": "bitsandbytes"}})",
       "", "field 'quant_method' is 'bitsandbytes'"},
      {"group does not divide", ok_head + R"("hidden_size": 64, "quantization_config": {"quant_method": "awq",
          "bits": 4, "group_size": 48, "zero_point": true, "version": "gemm"}})",
       "", "group_size 48 does not divide hidden_size (64)"},
      {"3-bit gptq", ok_head + R"("hidden_size": 64})", R"({"bits": 3, "group_size": 32, "desc_act": false})",
       "quantize_config.json: field 'bits' is 3"},
      {"bad dtype", ok_head + R"("hidden_size": 64, "torch_dtype": "float8"})", "", "field 'torch_dtype' is 'float8'"},
      {"not json", "{nope", "", "config.json: not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = ModelConfig::parse(c.config, "", c.quant, "quantize_config.json", "/models/m");
    ASSERT_FALSE(r.ok()) << c.what;
    const std::string msg = r.status().message();
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find("/models/m/"), std::string::npos) << c.what << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what;
  }
}

TEST(ModelConfig, MissingConfigFile) {
  testing::TempDir dir("noconfig");
  auto r = ModelConfig::load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(dir.path() + "/config.json: missing"), std::string::npos);
}

}  // namespace
}  // namespace tandem

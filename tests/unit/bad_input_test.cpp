// Issue 2's bad-input list, end to end through `tandem generate`: each case
// exits nonzero with one line on stderr naming the file (and tensor), no crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backend/registry.h"
#include "model/synth.h"
#include "test_util.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using testing::edit_safetensors_header;
using testing::run_command;
using testing::TempDir;

class BadInput : public ::testing::Test {
 protected:
  void make(const SynthOptions& o = SynthOptions()) { ASSERT_TRUE(write_synthetic_checkpoint(dir_.path(), o).ok()); }
  // Runs generate and checks the common contract; returns stderr's line.
  std::string generate_error() {
    const auto r = run_command(std::string(TANDEM_BINARY) + " generate --device cpu --model '" + dir_.path() +
                               "' --prompt-ids '1 2 3' --max-tokens 2 --format ids");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("tandem generate: ", 0), 0u) << r.err;
    return r.err;
  }
  void edit_config(const std::function<void(nlohmann::json&)>& f) {
    auto j = nlohmann::json::parse(testing::read_text(dir_.file("config.json")));
    f(j);
    testing::write_text(dir_.file("config.json"), j.dump());
  }
  TempDir dir_{"badinput"};
};

TEST_F(BadInput, GoodCheckpointRuns) {
  make();
  const auto r = run_command(std::string(TANDEM_BINARY) + " generate --device cpu --model '" + dir_.path() +
                             "' --prompt-ids '1 2 3' --max-tokens 3 --format ids --ignore-eos");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  int n = 0;
  std::istringstream in(r.out);
  for (int id; in >> id;) ++n;
  EXPECT_EQ(n, 3) << r.out;
}

TEST_F(BadInput, MissingConfig) {
  make();
  fs::remove(dir_.file("config.json"));
  EXPECT_NE(generate_error().find(dir_.file("config.json") + ": missing"), std::string::npos);
}

TEST_F(BadInput, MissingShard) {
  SynthOptions o;
  o.num_shards = 2;
  make(o);
  fs::remove(dir_.file("model-00002-of-00002.safetensors"));
  const std::string e = generate_error();
  EXPECT_NE(e.find("model-00002-of-00002.safetensors: shard missing"), std::string::npos) << e;
  EXPECT_NE(e.find("for tensor '"), std::string::npos) << e;
}

TEST_F(BadInput, TruncatedFile) {
  make();
  const std::string path = dir_.file("model.safetensors");
  fs::resize_file(path, fs::file_size(path) / 2);
  const std::string e = generate_error();
  EXPECT_NE(e.find(path + ": tensor '"), std::string::npos) << e;
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
}

TEST_F(BadInput, HeaderLengthPastEnd) {
  make();
  const std::string path = dir_.file("model.safetensors");
  std::string b = testing::read_text(path);
  b[4] = 0x7f;
  testing::write_text(path, b);
  const std::string e = generate_error();
  EXPECT_NE(e.find(path + ": header length"), std::string::npos) << e;
}

TEST_F(BadInput, OffsetsOutOfRange) {
  make();
  const std::string path = dir_.file("model.safetensors");
  edit_safetensors_header(path, [](nlohmann::json& h) {
    auto& e = h["model.norm.weight"]["data_offsets"];
    const uint64_t len = e[1].get<uint64_t>() - e[0].get<uint64_t>();
    e = {uint64_t{1} << 40, (uint64_t{1} << 40) + len};
  });
  const std::string e = generate_error();
  EXPECT_NE(e.find(path + ": tensor 'model.norm.weight': data_offsets"), std::string::npos) << e;
}

TEST_F(BadInput, OffsetsOverlap) {
  make();
  const std::string path = dir_.file("model.safetensors");
  edit_safetensors_header(path, [](nlohmann::json& h) {
    const auto emb = h["model.embed_tokens.weight"]["data_offsets"];
    auto& e = h["model.norm.weight"]["data_offsets"];
    const uint64_t len = e[1].get<uint64_t>() - e[0].get<uint64_t>();
    e = {emb[0].get<uint64_t>() + 4, emb[0].get<uint64_t>() + 4 + len};
  });
  const std::string e = generate_error();
  EXPECT_NE(e.find(path + ": tensor '"), std::string::npos) << e;
  EXPECT_NE(e.find("overlap tensor '"), std::string::npos) << e;
}

TEST_F(BadInput, DtypeDisagreesWithConfig) {
  make();
  const std::string path = dir_.file("model.safetensors");
  edit_safetensors_header(path, [](nlohmann::json& h) { h["model.layers.1.mlp.up_proj.weight"]["dtype"] = "I32"; });
  const std::string e = generate_error();
  EXPECT_NE(e.find(path + ": tensor 'model.layers.1.mlp.up_proj.weight': dtype I32 disagrees with config.json"),
            std::string::npos)
      << e;
}

TEST_F(BadInput, QuantDtypeDisagreesWithConfig) {
  SynthOptions o;
  o.quant = "awq";
  make(o);
  const std::string path = dir_.file("model.safetensors");
  edit_safetensors_header(path, [](nlohmann::json& h) {
    h["model.layers.0.self_attn.k_proj.qweight"]["dtype"] = "F32";  // same byte size as I32
  });
  const std::string e = generate_error();
  EXPECT_NE(e.find("tensor 'model.layers.0.self_attn.k_proj.qweight': dtype F32 disagrees"), std::string::npos) << e;
}

TEST_F(BadInput, ShapeDisagreesWithConfig) {
  make();
  edit_config([](nlohmann::json& j) { j["intermediate_size"] = 96; });
  const std::string e = generate_error();
  EXPECT_NE(e.find("model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight': shape [128, 64] disagrees "
                   "with config.json (expected [96, 64])"),
            std::string::npos)
      << e;
}

TEST_F(BadInput, MissingTensor) {
  make();
  edit_safetensors_header(dir_.file("model.safetensors"),
                          [](nlohmann::json& h) { h.erase("model.layers.1.self_attn.o_proj.weight"); });
  const std::string e = generate_error();
  EXPECT_NE(e.find("tensor 'model.layers.1.self_attn.o_proj.weight' not found"), std::string::npos) << e;
}

TEST_F(BadInput, UnknownArchitecture) {
  make();
  edit_config([](nlohmann::json& j) { j["architectures"] = {"FalconForCausalLM"}; });
  const std::string e = generate_error();
  EXPECT_NE(e.find(dir_.file("config.json") + ": field 'architectures' names unsupported architecture "
                                              "'FalconForCausalLM'"),
            std::string::npos)
      << e;
}

TEST_F(BadInput, UnknownQuantMethod) {
  make();
  edit_config([](nlohmann::json& j) { j["quantization_config"] = {{"quant_method", "exl2"}, {"bits", 4}}; });
  const std::string e = generate_error();
  EXPECT_NE(e.find("config.json:quantization_config: field 'quant_method' is 'exl2'"), std::string::npos) << e;
}

TEST_F(BadInput, GroupSizeDoesNotDivideK) {
  SynthOptions o;
  o.quant = "gptq";
  o.group_size = 32;
  make(o);
  edit_config([](nlohmann::json& j) { j["quantization_config"]["group_size"] = 48; });
  const std::string e = generate_error();
  EXPECT_NE(e.find("group_size 48 does not divide hidden_size (64), the input size K of tensor "
                   "'model.layers.0.self_attn.q_proj'"),
            std::string::npos)
      << e;
}

TEST_F(BadInput, GroupSizeDisagreesWithTensors) {
  SynthOptions o;
  o.quant = "awq";
  o.group_size = 32;
  make(o);
  edit_config([](nlohmann::json& j) { j["quantization_config"]["group_size"] = 64; });
  const std::string e = generate_error();
  EXPECT_NE(e.find("model.safetensors: tensor 'model.layers.0.self_attn.q_proj': qzeros is I32 [2, 8], expected "
                   "I32 [1, 8]"),
            std::string::npos)
      << e;
}

TEST_F(BadInput, CommandLine) {
  make();
  auto r = run_command(std::string(TANDEM_BINARY) + " generate --device cpu --model '" + dir_.path() +
                       "' --prompt-ids '1 x 3'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--prompt-ids: 'x' is not a token id"), std::string::npos) << r.err;
  r = run_command(std::string(TANDEM_BINARY) + " generate --device cpu --model '" + dir_.path() +
                  "' --prompt-ids '1 999'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("token id 999 is outside the vocabulary (256)"), std::string::npos) << r.err;
  r = run_command(std::string(TANDEM_BINARY) + " generate --model '" + dir_.path() + "' --prompt hello");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tokenizer"), std::string::npos) << r.err;
  const auto backends = compiled_backends();
  if (std::find(backends.begin(), backends.end(), "cuda") == backends.end()) {
    r = run_command(std::string(TANDEM_BINARY) + " generate --device cuda --model '" + dir_.path() +
                    "' --prompt-ids '1 2' --format ids");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--device cuda: this tandem was built without the CUDA backend"), std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace tandem

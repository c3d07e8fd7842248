// --load-format dummy on CUDA: random weights drawn in device memory take the
// same bytes as a real checkpoint's prepared layout and give finite logits.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/forward_batch.h"
#include "model/model_runner.h"
#include "model/synth_config.h"
#include "op_test_util.h"

namespace tandem::optest {
namespace {

class CudaRandom : public OpTest {};

std::vector<float> prefill(std::unique_ptr<Backend> be, const std::string& path, bool dummy, size_t* bytes) {
  ModelRunnerOptions ro;
  ro.num_pages = 4;
  ro.load.dummy = dummy;
  auto r = LocalModelRunner::create(std::move(be), path, ro);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) return {};
  *bytes = (*r)->model().weight_bytes();
  std::vector<float> logits;
  Status s = (*r)->forward(single_sequence_prefill({1, 2, 3, 4, 5, 6, 7}, 16, false), &logits);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return logits;
}

TEST_F(CudaRandom, DummyMatchesCheckpointBytesAndIsFinite) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("tandem_cuda_random_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  for (const char* quant : {"awq", "gptq", "none"}) {
    nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 256}, {"intermediate_size", 512},
                          {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
                          {"vocab_size", 320}, {"max_position_embeddings", 256}, {"torch_dtype", "float16"}};
    std::ofstream(dir + "/in.json") << cfg.dump();
    SynthConfigOptions o;
    o.config_path = dir + "/in.json";
    o.out_dir = dir + "/" + quant;
    o.quant = quant;
    o.desc_act = std::string(quant) == "gptq";
    auto w = synth_from_config(o);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    CudaBackendOptions co;
    co.memory_bytes = size_t{1} << 30;
    auto a = make_cuda_backend(co), b = make_cuda_backend(co);
    ASSERT_TRUE(a.ok() && b.ok());
    size_t from_file = 0, from_dummy = 0;
    const std::vector<float> ref = prefill(std::move(*a), o.out_dir, false, &from_file);
    const std::vector<float> got = prefill(std::move(*b), o.out_dir + "/config.json", true, &from_dummy);
    EXPECT_EQ(from_dummy, from_file) << quant;
    ASSERT_EQ(got.size(), 320u) << quant;
    for (float x : ref) ASSERT_TRUE(std::isfinite(x)) << quant;
    for (float x : got) ASSERT_TRUE(std::isfinite(x)) << quant;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tandem::optest

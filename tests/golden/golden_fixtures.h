// The HF golden fixtures (fixtures/models/golden_models.tar.xz, made on the GPU
// machine by scripts/gpu/make_model_fixtures.py): extracted once per test
// process into a temp folder, removed at exit.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace tandem::golden {

inline std::string archive_path() { return std::string(TANDEM_SOURCE_DIR) + "/fixtures/models/golden_models.tar.xz"; }

// Every variant the script writes; a missing one fails.
inline constexpr const char* kVariants[] = {
    "llama_f32_rope_linear",
    "llama_bf16_tied_sharded",
    "llama_f16_untied",
    "mistral_f16_window8",
    "qwen2_bf16_bias_window_disabled",
    "qwen2_f32_bias_untied",
    "awq_g32_llama",
    "awq_g64_qwen2",
    "awq_g128_mistral_old_quant_config",
    "gptq_v1_sym_g32",
    "gptq_v1_asym_actorder_g32",
    "gptq_v2_asym_actorder_g64_qwen2",
    "gptq_v2_sym_g128_old_quantize_config",
};

// A greedy token that differs from HF's is accepted only at a near tie: HF's
// top-2 logprob margin at that step below this, and ours in HF's top 3.
inline constexpr double kNearTieMargin = 0.05;

// The folder holding one subfolder per variant; "" when the archive is absent
// or cannot be extracted.
inline const std::string& fixtures_root() {
  struct Extracted {
    std::string dir, root;
    Extracted() {
      namespace fs = std::filesystem;
      if (!fs::exists(archive_path())) return;
      std::random_device rd;
      dir = (fs::temp_directory_path() / ("tandem_golden_" + std::to_string(getpid()) + "_" + std::to_string(rd())))
                .string();
      fs::create_directories(dir);
      const std::string cmd = "tar -xJf '" + archive_path() + "' -C '" + dir + "'";
      if (std::system(cmd.c_str()) == 0) root = dir + "/golden_models";
    }
    ~Extracted() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  };
  static const Extracted extracted;
  return extracted.root;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// Whether `ours` in place of HF's greedy token at this step (an element of a
// prompt's "steps") is a near tie that fp32 rounding may flip.
inline bool is_near_tie(const nlohmann::json& step, int32_t ours) {
  const double margin = step["top_logprobs"][0].get<double>() - step["top_logprobs"][1].get<double>();
  const auto top = step["top_ids"].get<std::vector<int32_t>>();
  const size_t n = std::min<size_t>(3, top.size());
  return margin < kNearTieMargin && std::find(top.begin(), top.begin() + n, ours) != top.begin() + n;
}

}  // namespace tandem::golden

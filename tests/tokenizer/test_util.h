// Helpers shared by the tokenizer tests: data paths and tokenizer loading.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"

namespace tandem::testing {

inline std::filesystem::path data_dir() {
  return std::filesystem::path(TANDEM_SOURCE_DIR) / ".cache" / "data";
}

inline std::string tokenizer_dir(const std::string& name) {
  return (data_dir() / "tokenizers" / name).string();
}

// Loads once per process; null (with a test failure) when missing or broken.
inline const Tokenizer* get_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  auto t = Tokenizer::load(tokenizer_dir(name));
  EXPECT_TRUE(t.ok()) << name << ": " << t.status().to_string()
                      << " (run scripts/fetch_data.sh to fetch the test data)";
  if (!t.ok()) return nullptr;
  return (cache[name] = std::move(t).value()).get();
}

inline std::string ids_str(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace tandem::testing

// A compiled PCRE2 pattern (UTF + UCP, JIT when available) for the split
// regexes of tokenizer.json, which are written for Oniguruma; the constructs
// these files use (\p{..}, lookahead, (?i:..)) mean the same in PCRE2.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tandem::hf {

class Regex {
 public:
  // `literal`: the pattern is a plain string, not a regex.
  static StatusOr<std::unique_ptr<Regex>> compile(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches, left to right, as [begin, end) byte offsets. The
  // subject must be valid UTF-8. Empty matches are skipped.
  void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace tandem::hf
